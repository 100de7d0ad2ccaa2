"""The invocation context a handler receives, and logs that carry the request id."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Context:
    """What Lambda tells the handler about this invocation (names as in Lambda's Python runtime)."""

    aws_request_id: str
    deadline_ms: int
    invoked_function_arn: str
    function_name: str
    function_version: str
    memory_limit_in_mb: int
    log_group_name: str
    log_stream_name: str
    trace_id: str | None = None
    client_context: str | None = None  # raw JSON from Lambda-Runtime-Client-Context, if any
    identity: str | None = None  # raw JSON from Lambda-Runtime-Cognito-Identity, if any

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
    """Stamps every record with the id of the invocation in progress."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


_request_id_filter = _RequestIdFilter()


def set_request_id(request_id: str) -> None:
    _request_id_filter.request_id = request_id


def install_logging(environ: Mapping[str, str] = os.environ) -> None:
    """Route the root logger to stderr as Lambda's Python runtime does, with the request id."""
    root = logging.getLogger()
    if any(_request_id_filter in handler.filters for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_request_id_filter)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.formatter.converter = time.gmtime  # type: ignore[union-attr]
    root.addHandler(handler)
    level = environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()
    root.setLevel(level if level in logging.getLevelNamesMapping() else logging.INFO)
