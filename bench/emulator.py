"""A lean emulated Runtime API for the benchmark: every contender talks to this same server.

It parses just enough HTTP to serve ``/next``, take buffered and chunked ``/response`` bodies
(counted, then dropped) and ``/error``; it timestamps what a benchmark needs with
``time.perf_counter``. It is kept cheap so that it is not what a contender waits for: worker
threads accept connections themselves (no hand-off between threads per connection), request
heads are parsed in one pass, and chunked bodies are skipped by offset, never copied. Its own
ceiling is measured in the same run by ``raw_client.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import socket
import threading
import time

_BUFFER = 1 << 20
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench"
_NEXT_HEAD = (
    "HTTP/1.1 200 OK\r\n"
    "Lambda-Runtime-Aws-Request-Id: {request_id}\r\n"
    "Lambda-Runtime-Deadline-Ms: 4102444800000\r\n"
    f"Lambda-Runtime-Invoked-Function-Arn: {FUNCTION_ARN}\r\n"
    "Lambda-Runtime-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: {length}\r\n\r\n"
)
_ACCEPTED = b'HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\n\r\n{"status":"OK"}\n'


class Outcome:
    """What the emulator saw of one invocation, in ``perf_counter`` seconds."""

    __slots__ = (
        "body_bytes",
        "done",
        "finished",
        "first_body_byte",
        "first_bytes",
        "handed_out",
        "request_id",
    )

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.handed_out = 0.0  # /next answered
        self.first_body_byte = 0.0
        self.done = 0.0  # response body complete
        self.body_bytes = 0
        self.first_bytes = b""  # the first body bytes (up to 64), for time stamps a handler sends
        self.finished = threading.Event()


class RuntimeApiEmulator:
    def __init__(self, workers: int = 4) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._events: queue.SimpleQueue[tuple[Outcome, bytes]] = queue.SimpleQueue()
        self._outcomes: dict[str, Outcome] = {}
        self._ids = itertools.count(1)
        self.first_next: float | None = None  # when the first /next arrived
        self._first_next_seen = threading.Event()
        self._closed = False
        for _ in range(workers):
            threading.Thread(target=self._work, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def wait_first_next(self, timeout: float = 30) -> float:
        if not self._first_next_seen.wait(timeout):
            raise TimeoutError("the runtime never asked for an event")
        assert self.first_next is not None
        return self.first_next

    def invoke(self, event: bytes) -> Outcome:
        """Queue one event; the next ``/next`` takes it. Events can be queued ahead."""
        outcome = Outcome(f"bench-{next(self._ids)}")
        self._outcomes[outcome.request_id] = outcome
        self._events.put((outcome, event))
        return outcome

    def _work(self) -> None:
        # Each worker accepts for itself: a new thread per connection, or a hand-off to a pool,
        # would charge the emulator's own scheduling to a runtime that opens a connection per
        # streamed response (as it must).
        buffer = bytearray(_BUFFER)  # one per worker: never allocated per connection
        while not self._closed:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._serve(connection, buffer)

    def _serve(self, connection: socket.socket, buffer: bytearray) -> None:
        reader = _Reader(connection, buffer)
        try:
            while True:
                head = reader.read_head()
                if head is None:
                    return
                path, headers = head
                if path.endswith(b"/invocation/next"):
                    self._answer_next(connection)
                elif path.endswith(b"/response"):
                    outcome = self._outcomes[path.split(b"/")[-2].decode()]
                    if b"transfer-encoding: chunked" in headers:
                        reader.read_chunked(outcome)
                    else:
                        reader.read_sized(_content_length(headers), outcome)
                    outcome.done = time.perf_counter()
                    connection.sendall(_ACCEPTED)
                    outcome.finished.set()
                else:  # /error, /init/error
                    reader.read_sized(_content_length(headers), None)
                    connection.sendall(_ACCEPTED)
                    if b"/invocation/" in path:
                        outcome = self._outcomes[path.split(b"/")[-2].decode()]
                        outcome.done = time.perf_counter()
                        outcome.finished.set()
        except OSError:
            return
        finally:
            connection.close()

    def _answer_next(self, connection: socket.socket) -> None:
        if self.first_next is None:
            self.first_next = time.perf_counter()
            self._first_next_seen.set()
        outcome, event = self._events.get()
        head = _NEXT_HEAD.format(request_id=outcome.request_id, length=len(event)).encode()
        outcome.handed_out = time.perf_counter()
        connection.sendall(head + event)


def _content_length(headers: bytes) -> int:
    start = headers.find(b"content-length:")
    if start < 0:
        return 0
    return int(headers[start + 15 : headers.index(b"\r\n", start)])


class _Reader:
    """Buffered reads over one connection, with bodies counted rather than kept."""

    def __init__(self, connection: socket.socket, buffer: bytearray) -> None:
        self._connection = connection
        self._buffer = buffer
        self._view = memoryview(self._buffer)
        self._start = 0
        self._end = 0

    def _fill(self) -> bool:
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._buffer):
            remaining = self._end - self._start
            self._buffer[:remaining] = self._buffer[self._start : self._end]
            self._start, self._end = 0, remaining
        received = self._connection.recv_into(self._view[self._end :])
        self._end += received
        return received > 0

    def _until(self, marker: bytes) -> bytes | None:
        while True:
            found = self._buffer.find(marker, self._start, self._end)
            if found >= 0:
                text = bytes(self._buffer[self._start : found])
                self._start = found + len(marker)
                return text
            if not self._fill():
                return None

    def read_head(self) -> tuple[bytes, bytes] | None:
        """The request's path and its header block, lower-cased (one search, one copy)."""
        head = self._until(b"\r\n\r\n")
        if not head:
            return None
        request_line, _, headers = head.partition(b"\r\n")
        return request_line.split(b" ", 2)[1], headers.lower() + b"\r\n"

    def _skip(self, size: int, outcome: Outcome | None) -> None:
        while size:
            if self._start == self._end and not self._fill():
                raise ConnectionError("body cut short")
            taken = min(size, self._end - self._start)
            if outcome is not None:
                if not outcome.body_bytes:
                    outcome.first_body_byte = time.perf_counter()
                if len(outcome.first_bytes) < 64:
                    wanted = min(taken, 64 - len(outcome.first_bytes))
                    outcome.first_bytes += bytes(self._view[self._start : self._start + wanted])
                outcome.body_bytes += taken
            self._start += taken
            size -= taken

    def read_sized(self, size: int, outcome: Outcome | None) -> None:
        self._skip(size, outcome)

    def read_chunked(self, outcome: Outcome) -> None:
        while True:
            size_line = self._until(b"\r\n")
            if size_line is None:
                raise ConnectionError("chunked body cut short")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                while self._until(b"\r\n") not in (b"", None):
                    pass  # trailers, up to the blank line
                return
            self._skip(size, outcome)
            self._skip(2, None)  # CRLF
