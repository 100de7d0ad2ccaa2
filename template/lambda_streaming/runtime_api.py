"""A small client for the Lambda Runtime API, on plain sockets.

Plain sockets rather than ``http.client``: the streamed response needs hand-made chunk framing and
trailers anyway (STREAMING-PROTOCOL.md 1.1, point 5), and fewer imports make a faster cold start.
For the same reason it uses ``_socket``, the C module under ``socket``: importing ``socket`` itself
loads ``enum`` and ``selectors`` (milliseconds before the first ``/next``), and the runtime needs
none of what it adds (enums, ``makefile``); reads are buffered here instead.
"""

from __future__ import annotations

import _socket
import sys

from .protocol import (
    CRLF,
    ERROR_BODY_TRAILER,
    ERROR_TYPE_HEADER,
    PRELUDE_CONTENT_TYPE,
    RUNTIME_API_VERSION,
    chunk_size_line,
    end_of_body,
    request_head,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    Chunk = bytes | bytearray | memoryview

_MAX_LINE = 65537
_MAX_HEAD = 1 << 20
_RECEIVE_SIZE = 65536


class RuntimeApiError(Exception):
    """The Runtime API answered something a runtime cannot go on from."""


class RuntimeApiGone(RuntimeApiError):
    """The Runtime API closed, refused the connection or answered 500: the runtime must exit."""


class Response:
    """One answer of the Runtime API. (Plain classes here: dataclasses cost cold-start time.)"""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers  # lower-cased names
        self.body = body


class Invocation:
    """One event from ``GET /runtime/invocation/next``."""

    __slots__ = ("event", "headers", "request_id")

    def __init__(self, request_id: str, event: bytes, headers: dict[str, str]) -> None:
        self.request_id = request_id
        self.event = event
        self.headers = headers  # lower-cased names


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (the value of AWS_LAMBDA_RUNTIME_API) as a host and a port."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        raise ValueError(f"AWS_LAMBDA_RUNTIME_API must be host:port, got {address!r}")
    return host.strip("[]"), int(port)


class Endpoint:
    """The Runtime API's socket address, resolved once (every streamed response connects anew)."""

    __slots__ = ("family", "host", "sockaddr")

    def __init__(self, address: str) -> None:
        host, port = split_address(address)
        self.host = address  # for the Host header
        # A bytes host keeps getaddrinfo from loading the idna codec: a cold-start saving.
        family, _, _, _, sockaddr = _socket.getaddrinfo(
            host.encode(), port, 0, _socket.SOCK_STREAM
        )[0]
        self.family = family
        self.sockaddr = sockaddr

    def connect(self) -> _socket.socket:
        connection = _socket.socket(self.family, _socket.SOCK_STREAM)
        try:
            # Every write of the handler must leave at once: no Nagle delay on small chunks.
            connection.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            connection.connect(self.sockaddr)
        except OSError:
            connection.close()
            raise
        return connection


class Reader:
    """Buffered reads from a socket: lines, a whole response head, sized and unsized bodies."""

    __slots__ = ("_buffer", "_connection")

    def __init__(self, connection: _socket.socket) -> None:
        self._connection = connection
        self._buffer = bytearray()

    def _fill(self) -> bool:
        data = self._connection.recv(_RECEIVE_SIZE)
        self._buffer += data
        return bool(data)

    def read_head(self) -> bytes:
        """Up to and including the blank line that ends a head (b"" if the peer closed first)."""
        buffer = self._buffer
        searched = 0
        while True:
            end = buffer.find(b"\r\n\r\n", searched)
            if end >= 0:
                end += 4
                break
            end = buffer.find(b"\n\n", searched)  # bare LFs, tolerated as most parsers do
            if end >= 0:
                end += 2
                break
            if len(buffer) > _MAX_HEAD:
                raise RuntimeApiError("the Runtime API sent a response head over 1 MiB")
            searched = max(0, len(buffer) - 3)
            if not self._fill():
                end = len(buffer)
                break
        head = bytes(buffer[:end])
        del buffer[:end]
        return head

    def readline(self, limit: int = _MAX_LINE) -> bytes:
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", 0, limit)
            if end >= 0:
                end += 1
                break
            if len(buffer) >= limit:
                end = limit
                break
            if not self._fill():
                end = len(buffer)
                break
        line = bytes(buffer[:end])
        del buffer[:end]
        return line

    def read(self, size: int = -1) -> bytes:
        buffer = self._buffer
        while (size < 0 or len(buffer) < size) and self._fill():
            pass
        if size < 0:
            size = len(buffer)
        data = bytes(buffer[:size])
        del buffer[:size]
        return data


def read_response(reader: Reader) -> tuple[Response, bool]:
    """Read one HTTP/1.1 response; also say whether the connection may be reused."""
    head = reader.read_head()
    if not head:
        raise RuntimeApiGone("the Runtime API closed the connection")
    status_line, *lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise RuntimeApiError(f"malformed status line from the Runtime API: {status_line!r}")
    headers: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _read_chunked(reader)
    elif "content-length" in headers:
        body = reader.read(int(headers["content-length"]))
    else:
        return Response(int(parts[1]), headers, reader.read()), False
    reusable = headers.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
    return Response(int(parts[1]), headers, body), reusable


def _read_chunked(reader: Reader) -> bytes:
    pieces = []
    while True:
        size = int(reader.readline(65537).split(b";", 1)[0], 16)
        if size == 0:
            while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(pieces)
        pieces.append(reader.read(size))
        reader.readline(65537)


class StreamingResponse:
    """One streamed ``POST /invocation/{id}/response``, on a connection of its own.

    The connection opens with the first bytes sent (so nothing is posted for a handler that fails
    before writing) and is closed once the body ends, as the documentation requires. Each call
    sends its chunks in one system call, without copying the data.
    """

    __slots__ = ("_connection", "_endpoint", "_head")

    def __init__(self, endpoint: Endpoint, request_id: str) -> None:
        self._endpoint = endpoint
        self._connection: _socket.socket | None = None
        self._head = request_head(
            "POST",
            f"/{RUNTIME_API_VERSION}/runtime/invocation/{request_id}/response",
            endpoint.host,
            {
                "Lambda-Runtime-Function-Response-Mode": "streaming",
                "Transfer-Encoding": "chunked",
                "Content-Type": PRELUDE_CONTENT_TYPE,
                # Declared up front so an error can still be reported after the first byte.
                "Trailer": f"{ERROR_TYPE_HEADER}, {ERROR_BODY_TRAILER}",
            },
        )

    @property
    def started(self) -> bool:
        return self._connection is not None

    def send(self, data: Chunk, *more: Chunk) -> None:
        """Send these chunks now (never an empty one: a zero-length chunk ends the body)."""
        connection = self._connection
        if connection is None or more:
            self._sendmsg(_framed((data, *more)))
            return
        # The hot path, one write of the handler: one system call, the data not copied.
        size = len(data)
        size_line = b"%x\r\n" % size
        buffers = (size_line, data, b"\r\n")
        sent = connection.sendmsg(buffers)
        if sent != len(size_line) + size + 2:
            _send_rest(connection, buffers, sent)

    def finish(
        self, *chunks: bytes | bytearray | memoryview, trailers: Mapping[str, str] | None = None
    ) -> Response | None:
        """Send the last chunks and the end of the body (with trailers if any), read Lambda's
        answer, close the connection. None if the Runtime API closed without answering."""
        buffers = _framed(chunks)
        buffers.append(end_of_body(trailers))
        self._sendmsg(buffers)
        connection = self._connection
        assert connection is not None
        try:
            response, _ = read_response(Reader(connection))
        except (OSError, RuntimeApiError) as error:
            # The body went out whole; a Runtime API that hangs up now is going away (the next
            # /next finds that out and the loop ends). Not the handler's error: no traceback.
            sys.stderr.write(f"[WARNING]\tno answer from the Runtime API to a response: {error}\n")
            return None
        finally:
            connection.close()
        if response.status != 202:
            sys.stderr.write(f"the Runtime API answered {response.status} to the response\n")
        return response

    def abandon(self) -> None:
        """Close the connection without ending the body (the peer has gone away)."""
        if self._connection is not None:
            self._connection.close()

    def _sendmsg(self, buffers: list[bytes | bytearray | memoryview]) -> None:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._endpoint.connect()
            buffers.insert(0, self._head)
        sent = connection.sendmsg(buffers)
        if sent < sum(map(len, buffers)):
            _send_rest(connection, buffers, sent)


def _send_rest(
    connection: _socket.socket, buffers: Sequence[bytes | bytearray | memoryview], sent: int
) -> None:
    """Finish a partial send: rare on a blocking socket, but legal."""
    connection.sendall(memoryview(b"".join(buffers))[sent:])


def _framed(
    chunks: tuple[bytes | bytearray | memoryview, ...],
) -> list[bytes | bytearray | memoryview]:
    buffers: list[bytes | bytearray | memoryview] = []
    for data in chunks:
        buffers += (chunk_size_line(len(data)), data, CRLF)
    return buffers


class RuntimeApiClient:
    """``/next``, ``/error``, ``/init/error`` on one kept-alive connection; streams on their own."""

    def __init__(self, address: str) -> None:
        try:
            self.endpoint = Endpoint(address)
        except OSError as error:
            raise RuntimeApiGone(f"cannot resolve the Runtime API {address!r}: {error}") from error
        self._connection: _socket.socket | None = None
        self._reader: Reader | None = None
        self._base = f"/{RUNTIME_API_VERSION}/runtime"
        self._next_request = request_head("GET", f"{self._base}/invocation/next", address)

    def next_invocation(self) -> Invocation:
        # No timeout here: the sandbox may be frozen while it waits (STREAMING-PROTOCOL.md 1).
        response = self._exchange(self._next_request)
        if response.status != 200:
            raise RuntimeApiError(f"/next answered {response.status}: {response.body[:200]!r}")
        request_id = response.headers.get("lambda-runtime-aws-request-id")
        if not request_id:
            raise RuntimeApiError("/next answered without Lambda-Runtime-Aws-Request-Id")
        return Invocation(request_id, response.body, response.headers)

    def stream_response(self, request_id: str) -> StreamingResponse:
        return StreamingResponse(self.endpoint, request_id)

    def post_error(self, request_id: str, error_type: str, payload: Mapping[str, object]) -> int:
        return self._post_error(f"{self._base}/invocation/{request_id}/error", error_type, payload)

    def post_init_error(self, error_type: str, payload: Mapping[str, object]) -> int:
        return self._post_error(f"{self._base}/init/error", error_type, payload)

    def close(self) -> None:
        self._reader = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _post_error(self, path: str, error_type: str, payload: Mapping[str, object]) -> int:
        import json  # only failures pay for it

        body = json.dumps(payload).encode()
        headers = {
            ERROR_TYPE_HEADER: error_type,
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
        }
        return self._request("POST", path, body, headers).status

    def _request(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Response:
        return self._exchange(request_head(method, path, self.endpoint.host, headers) + body)

    def _exchange(self, message: bytes) -> Response:
        for attempt in (1, 2):
            fresh = self._connection is None
            try:
                if self._connection is None:
                    self._connection = self.endpoint.connect()
                    self._reader = Reader(self._connection)
                assert self._reader is not None
                self._connection.sendall(message)
                response, reusable = read_response(self._reader)
            except (ConnectionError, RuntimeApiGone) as error:
                self.close()
                # A kept-alive connection may have been closed in between: retry once on a new one.
                if fresh or attempt == 2:
                    raise RuntimeApiGone(f"the Runtime API is gone: {error}") from error
                continue
            except OSError as error:
                self.close()
                raise RuntimeApiGone(f"the Runtime API is unreachable: {error}") from error
            if not reusable:
                self.close()
            if response.status >= 500:
                raise RuntimeApiGone(f"the Runtime API answered {response.status}: exit promptly")
            return response
        raise AssertionError("unreachable")
