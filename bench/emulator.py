"""A lean emulated Runtime API for the benchmark: every contender talks to this same server.

It parses just enough HTTP to serve ``/next``, take buffered and chunked ``/response`` bodies
(counted, then dropped) and ``/error``; it timestamps what a benchmark needs with
``time.perf_counter``.
"""

from __future__ import annotations

import itertools
import queue
import socket
import threading
import time
from dataclasses import dataclass, field

_BUFFER = 1 << 20
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench"


@dataclass
class Outcome:
    """What the emulator saw of one invocation, in ``perf_counter`` seconds."""

    request_id: str
    handed_out: float = 0.0  # /next answered
    first_body_byte: float = 0.0
    done: float = 0.0  # response body complete
    body_bytes: int = 0
    first_bytes: bytes = b""  # the first body bytes (up to 64), for time stamps a handler sends
    finished: threading.Event = field(default_factory=threading.Event)


class RuntimeApiEmulator:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._events: queue.Queue[tuple[Outcome, bytes]] = queue.Queue()
        self._outcomes: dict[str, Outcome] = {}
        self._ids = itertools.count(1)
        self.first_next: float | None = None  # when the first /next arrived
        self._first_next_seen = threading.Event()
        self._accepted: queue.Queue[socket.socket] = queue.Queue()
        for _ in range(8):
            threading.Thread(target=self._work, daemon=True).start()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def reset_first_next(self) -> None:
        self.first_next = None
        self._first_next_seen.clear()

    def wait_first_next(self, timeout: float = 30) -> float:
        if not self._first_next_seen.wait(timeout):
            raise TimeoutError("the runtime never asked for an event")
        assert self.first_next is not None
        return self.first_next

    def invoke(self, event: bytes) -> Outcome:
        outcome = Outcome(f"bench-{next(self._ids)}")
        self._outcomes[outcome.request_id] = outcome
        self._events.put((outcome, event))
        return outcome

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._accepted.put(connection)

    def _work(self) -> None:
        # Pre-started workers: a new thread per connection would charge the emulator's own thread
        # start-up to a runtime that opens a connection per streamed response (as it must).
        while True:
            self._serve(self._accepted.get())

    def _serve(self, connection: socket.socket) -> None:
        reader = _Reader(connection)
        try:
            while True:
                head = reader.read_head()
                if head is None:
                    return
                request_line, headers = head
                _, path, _ = request_line.split(" ", 2)
                if path.endswith("/invocation/next"):
                    self._answer_next(connection)
                elif path.endswith("/response"):
                    outcome = self._outcomes[path.split("/")[-2]]
                    if headers.get("transfer-encoding") == "chunked":
                        reader.read_chunked(outcome)
                    else:
                        reader.read_sized(int(headers.get("content-length", "0")), outcome)
                    outcome.done = time.perf_counter()
                    connection.sendall(_reply(202))
                    outcome.finished.set()
                else:  # /error, /init/error
                    reader.read_sized(int(headers.get("content-length", "0")), None)
                    connection.sendall(_reply(202))
                    if "/invocation/" in path:
                        outcome = self._outcomes[path.split("/")[-2]]
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
        head = (
            "HTTP/1.1 200 OK\r\n"
            f"Lambda-Runtime-Aws-Request-Id: {outcome.request_id}\r\n"
            "Lambda-Runtime-Deadline-Ms: 4102444800000\r\n"
            f"Lambda-Runtime-Invoked-Function-Arn: {FUNCTION_ARN}\r\n"
            "Lambda-Runtime-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(event)}\r\n\r\n"
        )
        outcome.handed_out = time.perf_counter()
        connection.sendall(head.encode() + event)


def _reply(status: int) -> bytes:
    return b"HTTP/1.1 %d OK\r\nContent-Length: 0\r\n\r\n" % status


class _Reader:
    """Buffered reads over one connection, with chunked bodies counted rather than kept."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._buffer = bytearray(_BUFFER)
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

    def _line(self) -> bytes | None:
        while True:
            newline = self._buffer.find(b"\n", self._start, self._end)
            if newline >= 0:
                line = bytes(self._buffer[self._start : newline + 1])
                self._start = newline + 1
                return line
            if not self._fill():
                return None

    def read_head(self) -> tuple[str, dict[str, str]] | None:
        request_line = self._line()
        if not request_line:
            return None
        headers = {}
        while (line := self._line()) not in (b"\r\n", None):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return request_line.decode("latin-1"), headers

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
            size_line = self._line()
            if size_line is None:
                raise ConnectionError("chunked body cut short")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                while self._line() not in (b"\r\n", None):
                    pass  # trailers
                return
            self._skip(size, outcome)
            self._skip(2, None)  # CRLF
