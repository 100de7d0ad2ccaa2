"""Start the function: the Lambda loop when ``AWS_LAMBDA_RUNTIME_API`` is set, else local mode."""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass

from .runtime import handler_from_environment, run_in_lambda


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
    auth: str = "NONE"  # "IAM": local mode checks SigV4 as API Gateway does
    # The stage's throttling (None: not throttled), for local mode's 429s (see throttling.py).
    throttling_rate_limit: float | None = None
    throttling_burst_limit: int | None = None


def main(
    handler: str | None = None,
    settings: FunctionSettings | None = None,
    argv: list[str] | None = None,
) -> None:
    """Run ``_HANDLER`` (or ``handler``) in Lambda, or locally behind an emulated API Gateway."""
    if os.environ.get("AWS_LAMBDA_RUNTIME_API"):
        run_in_lambda(handler)
        return
    handler_spec = handler_from_environment(handler)
    options = local_options(sys.argv[1:] if argv is None else argv)
    sys.exit(run_local(handler_spec, settings or FunctionSettings(), options))


@dataclass(frozen=True, slots=True)
class LocalOptions:
    """Local mode's switches: command-line flags, or environment variables when no flag is given."""

    concurrency: int = 1
    bandwidth_shape: bool = False


def local_options(argv: list[str], environ: dict[str, str] | None = None) -> LocalOptions:
    """Parse ``--concurrency N`` / ``LOCAL_LAMBDA_CONCURRENCY`` and ``--bandwidth-shape`` /
    ``LOCAL_LAMBDA_BANDWIDTH_SHAPE=1``; a bad value exits with a message."""
    environ = dict(os.environ) if environ is None else environ
    parser = argparse.ArgumentParser(
        prog=_program_name(),
        description="Local mode: the function behind an emulated API Gateway REST API.",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=None,
        metavar="N",
        help="execution environments serving requests at once, 1 to 1000 (default 1, as one "
        "Lambda environment: requests queue first in, first out); env LOCAL_LAMBDA_CONCURRENCY",
    )
    parser.add_argument(
        "--bandwidth-shape",
        action="store_true",
        default=None,
        help="pace responses as Lambda does: the first 6 MB at full speed, then about 2 MB/s; "
        "env LOCAL_LAMBDA_BANDWIDTH_SHAPE=1 (or true, yes, on)",
    )
    arguments = parser.parse_args(argv)
    concurrency = arguments.concurrency
    if concurrency is None:
        text = environ.get("LOCAL_LAMBDA_CONCURRENCY", "1")
        try:
            concurrency = _positive_int(text)
        except argparse.ArgumentTypeError as error:
            parser.error(f"LOCAL_LAMBDA_CONCURRENCY: {error}")
    shape = arguments.bandwidth_shape
    if shape is None:
        text = environ.get("LOCAL_LAMBDA_BANDWIDTH_SHAPE", "")
        shape = _switch(text)
        if shape is None:
            parser.error(
                "LOCAL_LAMBDA_BANDWIDTH_SHAPE must be 1, true, yes or on (or 0, false, no, off "
                f"or empty), got {text!r}"
            )
    return LocalOptions(concurrency, shape)


def _program_name() -> str:
    """``python -m <the package run>``, as the user typed it."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    package = spec.name.removesuffix(".__main__") if spec is not None else ""
    return f"python -m {package}" if package else "python -m <package>"


# Lambda's default concurrency quota per account and region; each environment is a thread here.
MAX_CONCURRENCY = 1000


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 1 to {MAX_CONCURRENCY}, not {text!r}"
        )
    return int(text)


def _switch(text: str) -> bool | None:
    """An on/off environment variable; None when it is neither."""
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("", "0", "false", "no", "off"):
        return False
    return None


def invocation_endpoint_problem(endpoint: str, settings: FunctionSettings) -> str | None:
    """Why ``LOCAL_LAMBDA_INVOCATION_ENDPOINT`` cannot be used, or None when it can."""
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", endpoint):
        return (
            "must be a path that starts with / and has only letters, digits and . _ ~ - /, "
            f"got {endpoint!r}"
        )
    api_gateway = f"/{settings.stage_name}{settings.api_path}"
    if endpoint == api_gateway:
        return f"must not be the API Gateway view's path {api_gateway}, got {endpoint!r}"
    if endpoint.rstrip("/") == "/2018-06-01" or endpoint.startswith("/2018-06-01/"):
        return f"must not be under the Runtime API's /2018-06-01, got {endpoint!r}"
    return None


def run_local(
    handler_spec: str, settings: FunctionSettings, options: LocalOptions | None = None
) -> int:
    """Local mode: one server (Runtime API, /invoke, API Gateway view), the real loop against it."""
    from .emulation import BandwidthShape  # only local mode needs these
    from .local_server import ExecutionEnvironments, LocalServer
    from .sigv4 import Credentials
    from .throttling import TokenBucket

    options = options or LocalOptions()

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
    if problem := invocation_endpoint_problem(endpoint, settings):
        return _fail(f"LOCAL_LAMBDA_INVOCATION_ENDPOINT {problem}")
    credentials = None
    key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret:
        credentials = Credentials(key_id, secret, os.environ.get("AWS_SESSION_TOKEN") or None)
    bucket = None
    if settings.throttling_rate_limit is not None and settings.throttling_burst_limit is not None:
        bucket = TokenBucket(settings.throttling_rate_limit, settings.throttling_burst_limit)
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
            auth=settings.auth,
            credentials=credentials,
            bandwidth_shape=BandwidthShape() if options.bandwidth_shape else None,
            throttle=bucket.try_acquire if bucket else None,
        )
    except OSError as error:
        return _fail(f"cannot listen on {host}:{port_text}: {error.strerror or error}")

    environments = ExecutionEnvironments(server, handler_spec, options.concurrency)
    environments.start()
    base = f"http://{_url_host(server.host)}:{server.port}"
    api_url = f"{base}/{settings.stage_name}{settings.api_path}"
    if settings.auth == "IAM":
        api_line = (
            f"  API Gateway (IAM, SigV4):\n"
            f"                  curl -N -i --aws-sigv4 'aws:amz:{settings.region}:execute-api' "
            f'--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" {api_url}\n'
            '                  (add -H "x-amz-security-token: $AWS_SESSION_TOKEN" '
            "for temporary credentials)\n"
        )
        if credentials is None:
            api_line += (
                "  WARNING: auth is IAM but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not "
                "set,\n  so no signature can be verified: every API Gateway request gets 403.\n"
                "  Export them (any values will do locally) and sign with the same ones.\n"
            )
    else:
        api_line = f"  API Gateway:    curl -N -i {api_url}   (auth NONE: public)\n"
    extras = [f"{options.concurrency} execution environment(s)"]
    if bucket is not None:
        extras.append(f"throttled at {bucket.rate_per_second:g}/s, burst {bucket.burst}")
    if options.bandwidth_shape:
        extras.append("Lambda's bandwidth shape on (6 MB at full speed, then 2 MB/s)")
    print(
        f"{settings.project_name} local mode (handler {handler_spec}; {', '.join(extras)})\n"
        f"  Lambda invoke:  curl -N --data '\"this is not used\"' {base}{endpoint}\n"
        f"{api_line}"
        f"  Runtime API:    {base}/2018-06-01\n"
        "One JSON access-log line per request goes to stderr. Press Ctrl-C to stop.",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nStopped.", flush=True)
        return 0
    finally:
        server.shutdown()
    return 1 if environments.init_failed else 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
