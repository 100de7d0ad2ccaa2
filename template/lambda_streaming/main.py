"""Start the function: the Lambda loop when ``AWS_LAMBDA_RUNTIME_API`` is set, else local mode."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

from .runtime import HandlerInitError, main_loop, serve


@dataclass(frozen=True, slots=True)
class FunctionSettings:
    """What local mode must know of the deployed function (the answers given to the template)."""

    project_name: str = "function"
    function_name: str = "function"
    stage_name: str = "prod"
    api_path: str = "/stream"
    timeout_seconds: float = 60.0
    memory_size: int = 128
    region: str = "us-east-1"
    # The stage's throttling (None: not throttled), for local mode's 429s (see throttling.py).
    throttling_rate_limit: float | None = None
    throttling_burst_limit: int | None = None


def main(handler: str | None = None, settings: FunctionSettings | None = None) -> None:
    """Run ``_HANDLER`` (or ``handler``) in Lambda, or locally behind an emulated API Gateway."""
    settings = settings or FunctionSettings()
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    if task_root not in sys.path:
        sys.path.insert(0, task_root)  # Lambda resolves the handler from the task root
    handler_spec = os.environ.get("_HANDLER") or handler
    if not handler_spec:
        sys.exit(
            "no handler: set _HANDLER=module.attribute, for example my_package.handler.handler"
        )
    runtime_api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if runtime_api:
        main_loop(handler_spec, runtime_api)
    else:
        sys.exit(run_local(handler_spec, settings))


def run_local(handler_spec: str, settings: FunctionSettings) -> int:
    """Local mode: one server (Runtime API, /invoke, API Gateway view), the real loop against it."""
    from .local_server import LocalServer  # only local mode needs the HTTP server

    for name, value in {
        "AWS_LAMBDA_FUNCTION_NAME": settings.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(settings.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{settings.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
    }.items():
        os.environ.setdefault(name, value)
    host = os.environ.get("LOCAL_LAMBDA_HOST", "127.0.0.1")
    port_text = os.environ.get("LOCAL_LAMBDA_PORT", "7000")
    if not port_text.isdigit() or int(port_text) > 65535:
        return _fail(f"LOCAL_LAMBDA_PORT must be a port number (0 to 65535), got {port_text!r}")
    endpoint = os.environ.get("LOCAL_LAMBDA_INVOCATION_ENDPOINT", "/invoke")
    if not endpoint.startswith("/"):
        return _fail(f"LOCAL_LAMBDA_INVOCATION_ENDPOINT must start with /, got {endpoint!r}")
    try:
        server = LocalServer(
            host,
            int(port_text),
            invocation_endpoint=endpoint,
            stage_name=settings.stage_name,
            api_path=settings.api_path,
            timeout_seconds=settings.timeout_seconds,
            function_name=settings.function_name,
            region=settings.region,
        )
    except OSError as error:
        return _fail(f"cannot listen on {host}:{port_text}: {error.strerror or error}")

    outcome: list[int] = []

    def run_runtime() -> None:
        try:
            serve(handler_spec, server.runtime_api)
            outcome.append(0)
        except HandlerInitError:
            outcome.append(1)
        except BaseException:
            outcome.append(1)
            raise
        finally:
            server.shutdown()

    threading.Thread(target=run_runtime, name="lambda-runtime", daemon=True).start()
    base = f"http://{_url_host(server.host)}:{server.port}"
    print(
        f"{settings.project_name} local mode (handler {handler_spec})\n"
        f"  Lambda invoke:  curl -N --data '\"this is not used\"' {base}{endpoint}\n"
        f"  API Gateway:    curl -N -i {base}/{settings.stage_name}{settings.api_path}\n"
        f"  Runtime API:    {base}/2018-06-01\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nStopped.", flush=True)
        return 0
    finally:
        server.shutdown()
    return outcome[0] if outcome else 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
