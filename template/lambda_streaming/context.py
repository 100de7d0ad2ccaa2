"""The invocation context a handler receives, and logs that carry the request id."""

from __future__ import annotations

import logging
import os
import sys
import threading
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
        cls, request_id: str, headers: Mapping[str, str], environ: Mapping[str, str] = os.environ
    ) -> Context:
        """Build the context from /next's headers (lower-cased) and the function's environment."""
        deadline = headers.get("lambda-runtime-deadline-ms", "")
        return cls(
            aws_request_id=request_id,
            deadline_ms=int(deadline) if deadline.isdigit() else int(time.time() * 1000) + 900_000,
            invoked_function_arn=headers.get("lambda-runtime-invoked-function-arn", ""),
            function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            function_version=environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            memory_limit_in_mb=int(environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0") or 0),
            log_group_name=environ.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream_name=environ.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
            trace_id=headers.get("lambda-runtime-trace-id"),
            client_context=headers.get("lambda-runtime-client-context"),
            identity=headers.get("lambda-runtime-cognito-identity"),
        )


class _RequestIdFilter(logging.Filter):
    """Stamps every record with the id of the invocation in progress.

    The id is kept per thread, so that local mode's several execution environments (threads) log
    their own; threads a handler starts itself see the id of the invocation in progress.
    """

    def __init__(self) -> None:
        super().__init__()
        self.latest = ""
        self.per_thread = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = getattr(self.per_thread, "request_id", None)
        if request_id is None:  # a thread no runtime runs in
            # local mode's server is not part of any invocation; a handler's own threads are
            request_id = "" if record.name.startswith("lambda_streaming.local") else self.latest
        record.aws_request_id = request_id
        return True


_request_id_filter = _RequestIdFilter()


def set_request_id(request_id: str) -> None:
    _request_id_filter.per_thread.request_id = request_id
    _request_id_filter.latest = request_id


def install_logging(environ: Mapping[str, str] = os.environ) -> None:
    """Route the root logger to stderr as Lambda's Python runtime does, with the request id."""
    root = logging.getLogger()
    if any(_request_id_filter in handler.filters for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_request_id_filter)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root.addHandler(handler)
    level = environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()
    root.setLevel(level if level in logging.getLevelNamesMapping() else logging.INFO)
