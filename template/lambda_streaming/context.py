"""The invocation context a handler receives, and logs that carry the request id."""

from __future__ import annotations

import _thread
import os
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start
if TYPE_CHECKING:
    from collections.abc import Mapping


class Context:
    """What Lambda tells the handler about this invocation (names as in Lambda's Python runtime).

    A plain class with slots rather than a dataclass: ``dataclasses`` costs milliseconds of cold
    start, and the context is built once per invocation.
    """

    __slots__ = (
        "aws_request_id",
        "client_context",
        "deadline_ms",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
        "trace_id",
    )

    def __init__(
        self,
        aws_request_id: str,
        deadline_ms: int,
        invoked_function_arn: str,
        function_name: str,
        function_version: str,
        memory_limit_in_mb: int,
        log_group_name: str,
        log_stream_name: str,
        trace_id: str | None = None,
        client_context: str | None = None,
        identity: str | None = None,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.deadline_ms = deadline_ms
        self.invoked_function_arn = invoked_function_arn
        self.function_name = function_name
        self.function_version = function_version
        self.memory_limit_in_mb = memory_limit_in_mb
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.trace_id = trace_id
        self.client_context = client_context  # raw JSON of Lambda-Runtime-Client-Context
        self.identity = identity  # raw JSON of Lambda-Runtime-Cognito-Identity

    def __repr__(self) -> str:
        return f"Context(aws_request_id={self.aws_request_id!r}, function={self.function_name!r})"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before Lambda stops the function (0 once the deadline has passed)."""
        return max(0, self.deadline_ms - int(time.time() * 1000))

    @classmethod
    def from_invocation(
        cls,
        request_id: str,
        headers: Mapping[str, str],
        function: FunctionEnvironment | None = None,
    ) -> Context:
        """Build the context from /next's headers (lower-cased) and the function's environment."""
        function = function or FunctionEnvironment.read()
        deadline = headers.get("lambda-runtime-deadline-ms", "")
        return cls(
            request_id,
            int(deadline) if deadline.isdigit() else int(time.time() * 1000) + 900_000,
            headers.get("lambda-runtime-invoked-function-arn", ""),
            function.name,
            function.version,
            function.memory_limit_in_mb,
            function.log_group_name,
            function.log_stream_name,
            headers.get("lambda-runtime-trace-id"),
            headers.get("lambda-runtime-client-context"),
            headers.get("lambda-runtime-cognito-identity"),
        )


class FunctionEnvironment:
    """What Lambda's environment variables say of the function; they do not change while it runs,
    so the runtime reads them once, not at every invocation."""

    __slots__ = ("log_group_name", "log_stream_name", "memory_limit_in_mb", "name", "version")

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.name = environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.version = environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        memory = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.memory_limit_in_mb = int(memory) if memory.isdigit() else 0
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")

    @classmethod
    def read(cls) -> FunctionEnvironment:
        return cls(os.environ)


class _RequestIds(_thread._local):
    """The id of the invocation each runtime thread is serving (local mode may run several)."""

    request_id: str | None = None


_ids = _RequestIds()
_latest = [""]  # the invocation in progress, for threads a handler starts itself


def set_request_id(request_id: str) -> None:
    _ids.request_id = request_id
    _latest[0] = request_id


def current_request_id(logger_name: str = "") -> str:
    request_id = _ids.request_id
    if request_id is None:  # a thread no runtime runs in
        # local mode's server is not part of any invocation; a handler's own threads are
        return "" if logger_name.startswith("lambda_streaming.local") else _latest[0]
    return request_id


def install_logging(environ: Mapping[str, str] = os.environ) -> None:
    """Route the root logger to stderr as Lambda's Python runtime does, with the request id.

    Called once ``logging`` has been imported (by the handler, usually): a handler that never
    logs does not pay for importing it at cold start.
    """
    import logging

    root = logging.getLogger()
    if any(getattr(handler, "stamps_request_ids", False) for handler in root.handlers):
        return

    class RequestIdHandler(logging.StreamHandler):  # type: ignore[type-arg]
        stamps_request_ids = True

        def emit(self, record: logging.LogRecord) -> None:
            record.aws_request_id = current_request_id(record.name)
            super().emit(record)

    handler = RequestIdHandler(sys.stderr)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root.addHandler(handler)
    level = environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()
    root.setLevel(level if level in logging.getLevelNamesMapping() else logging.INFO)
