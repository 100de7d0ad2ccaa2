"""A small client for the Lambda Runtime API, on plain sockets.

Plain sockets rather than ``http.client``: the streamed response needs hand-made chunk framing and
trailers anyway (STREAMING-PROTOCOL.md 1.1, point 5), and fewer imports make a faster cold start.
"""

from __future__ import annotations

import json
import socket
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
    from collections.abc import Mapping
    from typing import BinaryIO


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
        family, _, _, _, sockaddr = socket.getaddrinfo(
            host.encode(), port, type=socket.SOCK_STREAM
        )[0]
        self.family = family
        self.sockaddr = sockaddr

    def connect(self) -> socket.socket:
        connection = socket.socket(self.family, socket.SOCK_STREAM)
        # Every write of the handler must leave at once: no Nagle delay on small chunks.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.connect(self.sockaddr)
        return connection


def read_response(reader: BinaryIO) -> tuple[Response, bool]:
    """Read one HTTP/1.1 response; also say whether the connection may be reused."""
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
        return Response(int(parts[1]), headers, reader.read()), False
    reusable = headers.get("connection", "").lower() != "close" and parts[0] == b"HTTP/1.1"
    return Response(int(parts[1]), headers, body), reusable


def _read_chunked(reader: BinaryIO) -> bytes:
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
        self._connection: socket.socket | None = None
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

    def send(self, *chunks: bytes | bytearray | memoryview) -> None:
        """Send these chunks now (never an empty one: a zero-length chunk ends the body)."""
        if len(chunks) == 1:  # the hot path: one write of the handler
            data = chunks[0]
            self._sendmsg([chunk_size_line(len(data)), data, CRLF])
        else:
            self._sendmsg(_framed(chunks))

    def finish(
        self, *chunks: bytes | bytearray | memoryview, trailers: Mapping[str, str] | None = None
    ) -> Response:
        """Send the last chunks and the end of the body (with trailers if any), read Lambda's
        answer, close the connection."""
        buffers = _framed(chunks)
        buffers.append(end_of_body(trailers))
        self._sendmsg(buffers)
        connection = self._connection
        assert connection is not None
        try:
            with connection.makefile("rb") as reader:
                response, _ = read_response(reader)
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
        total = sum(map(len, buffers))
        if sent < total:  # a partial send: rare on a blocking socket, but legal
            connection.sendall(b"".join(buffers)[sent:])


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
        self._connection: socket.socket | None = None
        self._reader: BinaryIO | None = None
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
        return StreamingResponse(self.endpoint, request_id)

    def post_error(self, request_id: str, error_type: str, payload: Mapping[str, object]) -> int:
        return self._post_error(f"{self._base}/invocation/{request_id}/error", error_type, payload)

    def post_init_error(self, error_type: str, payload: Mapping[str, object]) -> int:
        return self._post_error(f"{self._base}/init/error", error_type, payload)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
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
        message = request_head(method, path, self.endpoint.host, headers) + body
        for attempt in (1, 2):
            fresh = self._connection is None
            try:
                if self._connection is None:
                    self._connection = self.endpoint.connect()
                    self._reader = self._connection.makefile("rb")
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
