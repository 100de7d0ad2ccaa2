"""``python -m lambda_streaming``: run the handler that ``_HANDLER`` names (as in Lambda)."""

from .main import main

if __name__ == "__main__":
    main()
