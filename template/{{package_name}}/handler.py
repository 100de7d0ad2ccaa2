"""The function: streams numbers with a pause between them, then a closing line.

Change it freely: this file is yours. The handler gets the event as bytes, a writer that sends
each ``write`` to the client at once, and Lambda's context.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from lambda_streaming import Context, ResponseStreamWriter, RestProxyEvent

logger = logging.getLogger(__name__)

HEADERS = {"Content-Type": "text/plain", "x-my-custom-header": "streaming-example"}


def pause_seconds() -> float:
    """The pause between numbers: ``STREAM_PAUSE_MS`` milliseconds, 1000 by default."""
    value = os.environ.get("STREAM_PAUSE_MS", "1000")
    if not value.strip().isdigit():
        raise ValueError(f"STREAM_PAUSE_MS must be a whole number of milliseconds, got {value!r}")
    return int(value) / 1000


def send_numbers(
    writer: ResponseStreamWriter,
    count: int = 3,
    pause: float = 1.0,
    sleep: Callable[[float], object] = time.sleep,
) -> None:
    """Write ``Number: 1`` to ``Number: count``, pausing after each, then the closing line."""
    for number in range(1, count + 1):
        writer.write(f"Number: {number}\n")
        sleep(pause)
    writer.write("Streaming complete!\n")


def handler(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
    """Any event will do: an API Gateway request or a direct invoke's ``"this is not used"``."""
    request = RestProxyEvent.parse(event)
    if request is not None:
        logger.info("%s %s", request.http_method, request.path)
    # Read before the status goes out: a bad setting then fails the request cleanly (502), where
    # after the status the client could only see the stream cut short.
    pause = pause_seconds()
    writer.write_status_and_headers(200, HEADERS)
    send_numbers(writer, pause=pause)
    writer.finish()
