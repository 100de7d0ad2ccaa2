"""``python -m lambda_streaming``: run the handler that ``_HANDLER`` names (as in Lambda).

The exec wrapper starts the function this way. In Lambda only the loop's modules are imported,
which keeps the cold start short; local mode's server loads only when it is needed.
"""

import os

if __name__ == "__main__":
    if os.environ.get("AWS_LAMBDA_RUNTIME_API"):
        from .runtime import run_in_lambda

        run_in_lambda()
    else:
        from .main import main

        main()
