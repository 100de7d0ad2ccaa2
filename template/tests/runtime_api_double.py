"""A recording Runtime API for the runtime's protocol tests.

It parses what the runtime sends with its own few lines of code (not local mode's parser), so the
tests pin the bytes on the wire independently of the server that ships with the project.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import socket
import threading
from dataclasses import dataclass, field

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    chunks: list[bytes] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    closed_by_client: bool = False  # the client closed its side after this request


class RuntimeApiDouble:
    """Serves queued events on /next, answers 202 elsewhere, records every request in order."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._events: queue.Queue[tuple[str, bytes, dict[str, str]] | None] = queue.Queue()
        self.requests: list[RecordedRequest] = []
        self.finished = threading.Condition()
        self._ids = itertools.count(1)
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def invoke(self, event: bytes, **headers: str) -> str:
        request_id = f"request-{next(self._ids)}"
        self._events.put((request_id, event, headers))
        return request_id

    def close(self) -> None:
        # shutdown() wakes the threads blocked in accept() and recv(); close() alone does not.
        for sock in (self._listener, *self._connections):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._events.put(None)

    def wait_for(self, count: int, timeout: float = 10) -> list[RecordedRequest]:
        """Wait until ``count`` requests other than /next have ended; return them."""
        with self.finished:
            self.finished.wait_for(lambda: len(self.answered()) >= count, timeout)
        return self.answered()

    def answered(self) -> list[RecordedRequest]:
        return [request for request in self.requests if not request.path.endswith("/next")]

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the runtime went away: nothing more to record
            self._serve_requests(connection)

    def _serve_requests(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        with connection, reader:
            while request := self._read_request(reader):
                if request.path.endswith("/invocation/next"):
                    item = self._events.get()
                    if item is None:
                        self._events.put(None)  # for any other waiter too
                        return
                    request_id, event, extra = item
                    headers = {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": "4102444800000",
                        "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                        **{name.replace("_", "-"): value for name, value in extra.items()},
                    }
                    self._answer(connection, 200, event, headers)
                else:
                    self._answer(connection, 202, b'{"status":"OK"}', {})
                    if request.headers.get("transfer-encoding") == "chunked":
                        request.closed_by_client = reader.read(1) == b""
                with self.finished:
                    self.requests.append(request)
                    self.finished.notify_all()

    @staticmethod
    def _answer(connection: socket.socket, status: int, body: bytes, headers: dict) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    @staticmethod
    def _read_request(reader) -> RecordedRequest | None:  # type: ignore[no-untyped-def]
        request_line = reader.readline()
        if not request_line:
            return None
        method, path, _ = request_line.decode().split(" ", 2)
        headers = {}
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        request = RecordedRequest(method, path, headers)
        if headers.get("transfer-encoding") == "chunked":
            while size := int(reader.readline().strip(), 16):
                request.chunks.append(reader.read(size))
                assert reader.read(2) == b"\r\n"
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                request.trailers[name.strip()] = value.strip()
            request.body = b"".join(request.chunks)
        else:
            request.body = reader.read(int(headers.get("content-length", 0)))
        return request

    def json_body(self, request: RecordedRequest) -> dict:
        return json.loads(request.body)
