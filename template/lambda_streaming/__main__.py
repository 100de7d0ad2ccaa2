"""``python -m lambda_streaming``: run the handler named by ``_HANDLER`` (how the exec wrapper starts us)."""

from .main import main

if __name__ == "__main__":
    main()
