"""``ResponseStreamWriter``: what a handler writes its HTTP response with, chunk by chunk."""

from __future__ import annotations

from .protocol import DEFAULT_PRELUDE, encode_prelude

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Protocol

    Chunk = bytes | bytearray | memoryview

    class ResponseSink(Protocol):
        """Where the chunks go: the Runtime API's streamed response, or a list in tests."""

        def send(self, data: Chunk, *more: Chunk) -> None:
            """Send these non-empty chunks now, in one go."""

        def finish(self, *chunks: Chunk) -> object:
            """Send these last chunks and end the body."""


class StreamStateError(RuntimeError):
    """A writer method was called out of order (after finish, or headers after the body)."""


class ResponseStreamWriter:
    """Streams one invocation's response; every non-empty write is on the socket when it returns.

    Call ``write_status_and_headers`` at most once and before the body, then ``write`` as often as
    you like, then ``finish``. A body written without status and headers gets status 200, and a
    handler that returns without finishing is finished by the runtime.
    """

    __slots__ = ("_finished", "_headers_sent", "_send", "_sink")

    def __init__(self, sink: ResponseSink) -> None:
        self._sink = sink
        self._send = sink.send  # bound once: write() is the hot path
        self._headers_sent = False
        self._finished = False

    @property
    def started(self) -> bool:
        """True once the first byte (the prelude) has been sent."""
        return self._headers_sent

    @property
    def finished(self) -> bool:
        return self._finished

    def write_status_and_headers(
        self,
        status_code: int,
        headers: Mapping[str, str] | None = None,
        *,
        multi_value_headers: Mapping[str, Iterable[str]] | None = None,
        cookies: Iterable[str] | None = None,
    ) -> None:
        """Send the HTTP status and headers (API Gateway's prelude). Refuses CR, LF and NUL."""
        self._check_open()
        if self._headers_sent:
            raise StreamStateError("status and headers were already sent (or the body started)")
        prelude = encode_prelude(
            status_code, headers, multi_value_headers=multi_value_headers, cookies=cookies
        )
        self._sink.send(prelude)
        self._headers_sent = True

    def write(self, data: bytes | bytearray | memoryview | str) -> None:
        """Send ``data`` as one chunk now. ``str`` is sent as UTF-8; empty data sends nothing."""
        if self._finished:
            raise StreamStateError("the response is finished: nothing more can be written")
        if type(data) is not bytes:  # bytes, the common case, skips the call
            data = _as_bytes(data)
        if not data:
            return  # a zero-length chunk would end the body (STREAMING-PROTOCOL.md 1.1, point 6)
        if self._headers_sent:
            self._send(data)
        else:
            # API Gateway answers 500 to a stream without a prelude: send the 200 a client expects.
            self._headers_sent = True
            self._sink.send(DEFAULT_PRELUDE, data)

    def finish(self) -> None:
        """End the response. Calling it twice, or after ``write_and_finish``, raises."""
        self._check_open()
        self._finished = True
        if self._headers_sent:
            self._sink.finish()
        else:
            self._headers_sent = True
            self._sink.finish(DEFAULT_PRELUDE)

    def write_and_finish(self, data: bytes | bytearray | memoryview | str) -> None:
        """``write(data)`` then ``finish()``, in one system call."""
        self._check_open()
        data = _as_bytes(data)
        chunks = () if self._headers_sent else (DEFAULT_PRELUDE,)
        self._headers_sent = self._finished = True
        if data:
            self._sink.finish(*chunks, data)
        else:
            self._sink.finish(*chunks)

    def _check_open(self) -> None:
        if self._finished:
            raise StreamStateError("the response is already finished")


def _as_bytes(data: bytes | bytearray | memoryview | str) -> bytes | bytearray | memoryview:
    if type(data) is bytes:  # the common case first
        return data
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, memoryview):
        return data.cast("B") if data.format != "B" or data.ndim != 1 else data
    if isinstance(data, bytes | bytearray):
        return data
    raise TypeError(f"write() takes bytes or str, not {type(data).__name__}")
