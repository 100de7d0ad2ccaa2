"""A small client for the Lambda Runtime API, on plain sockets.

Plain sockets rather than ``http.client``: the streamed response needs hand-made chunk framing and
trailers anyway (STREAMING-PROTOCOL.md 1.1, point 5), and fewer imports make a faster cold start.
"""

from __future__ import annotations

import json
import socket

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
    from collections.abc import Mapping


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
    """``host:port`` (the value of AWS_LAMBDA_RUNTIME_API) as a socket address."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        raise ValueError(f"AWS_LAMBDA_RUNTIME_API must be host:port, got {address!r}")
    return host.strip("[]"), int(port)


def connect(address: tuple[str, int]) -> socket.socket:
    connection = socket.create_connection(address)
    # Every write of the handler must leave at once: no Nagle delay on small chunks.
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def read_response(connection: socket.socket) -> tuple[Response, bool]:
    """Read one HTTP/1.1 response; also say whether the connection may be reused."""
    reader = connection.makefile("rb")
    try:
        status_line = reader.readline(65537)
        if not status_line:
            raise RuntimeApiGone("the Runtime API closed the connection")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise RuntimeApiError(f"malformed status line from the Runtime API: {status_line!r}")
        headers: dict[str, str] = {}
        while (line := reader.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = _read_chunked(reader)
        elif "content-length" in headers:
            body = reader.read(int(headers["content-length"]))
        else:
            body = reader.read()
            return Response(int(parts[1]), headers, body), False
        reusable = headers.get("connection", "").lower() != "close" and parts[0] == b"HTTP/1.1"
        return Response(int(parts[1]), headers, body), reusable
    finally:
        reader.close()


def _read_chunked(reader) -> bytes:  # type: ignore[no-untyped-def]
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
    before writing) and is closed once the body ends, as the documentation requires.
    """

    __slots__ = ("_address", "_connection", "_head")

    def __init__(self, address: tuple[str, int], host: str, request_id: str) -> None:
        self._address = address
        self._connection: socket.socket | None = None
        self._head = request_head(
            "POST",
            f"/{RUNTIME_API_VERSION}/runtime/invocation/{request_id}/response",
            host,
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

    def send_chunk(self, data: bytes | bytearray | memoryview) -> None:
        """Send one chunk now: size line, data and CRLF in one system call, without copying data."""
        size = len(data)
        size_line = chunk_size_line(size)
        connection = self._connection
        if connection is None:
            connection = self._connection = connect(self._address)
            size_line = self._head + size_line
        sent = connection.sendmsg((size_line, data, CRLF))
        if sent < len(size_line) + size + 2:  # a partial send: rare on a blocking socket, but legal
            connection.sendall(b"".join((size_line, data, CRLF))[sent:])

    def close(self, trailers: Mapping[str, str] | None = None) -> Response:
        """End the body (with trailers if any), read Lambda's answer and close the connection."""
        connection = self._connection
        if connection is None:
            connection = self._connection = connect(self._address)
            connection.sendall(self._head)
        try:
            connection.sendall(end_of_body(trailers))
            response, _ = read_response(connection)
            return response
        finally:
            connection.close()

    def abandon(self) -> None:
        """Close the connection without ending the body (the peer has gone away)."""
        if self._connection is not None:
            self._connection.close()


class RuntimeApiClient:
    """``/next``, ``/error``, ``/init/error`` on one kept-alive connection; streams on their own."""

    def __init__(self, address: str) -> None:
        self.host = address
        self.address = split_address(address)
        self._connection: socket.socket | None = None
        self._base = f"/{RUNTIME_API_VERSION}/runtime"

    def next_invocation(self) -> Invocation:
        # No timeout here: the sandbox may be frozen while it waits (STREAMING-PROTOCOL.md 1).
        response = self._request("GET", f"{self._base}/invocation/next")
        if response.status != 200:
            raise RuntimeApiError(f"/next answered {response.status}: {response.body[:200]!r}")
        request_id = response.headers.get("lambda-runtime-aws-request-id")
        if not request_id:
            raise RuntimeApiError("/next answered without Lambda-Runtime-Aws-Request-Id")
        return Invocation(request_id, response.body, response.headers)

    def stream_response(self, request_id: str) -> StreamingResponse:
        return StreamingResponse(self.address, self.host, request_id)

    def post_error(self, request_id: str, error_type: str, payload: Mapping[str, object]) -> int:
        return self._post_error(f"{self._base}/invocation/{request_id}/error", error_type, payload)

    def post_init_error(self, error_type: str, payload: Mapping[str, object]) -> int:
        return self._post_error(f"{self._base}/init/error", error_type, payload)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _post_error(self, path: str, error_type: str, payload: Mapping[str, object]) -> int:
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
        message = request_head(method, path, self.host, headers) + body
        for attempt in (1, 2):
            fresh = self._connection is None
            try:
                if self._connection is None:
                    self._connection = connect(self.address)
                self._connection.sendall(message)
                response, reusable = read_response(self._connection)
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
