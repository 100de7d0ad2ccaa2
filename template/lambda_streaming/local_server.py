"""`LocalServer`: local mode's one HTTP server, standard library only.

On one port it serves
- the Lambda Runtime API (`/2018-06-01/...`) for the runtime loop running in the same process,
  so local mode exercises the very protocol code that runs in Lambda;
- `POST <invocation_endpoint>` (default `/invoke`): the body is the raw event, the answer is the
  function's raw stream, as Lambda's InvokeWithResponseStream gives it;
- the API Gateway view, `ANY /<stage_name><api_path>`: the request becomes a REST proxy event, the
  prelude becomes the status and headers, the rest of the body streams chunked.

Invocations are queued first in, first out; each runtime loop (an execution environment) takes one
at a time, and `ExecutionEnvironments` runs N of them. Every piece of the function's stream is
written to the client as soon as it arrives. The protocol work (chunk decoding, prelude parsing, the
event, SigV4, pacing) is in `emulation.py` and `sigv4.py`; this module only moves bytes between
sockets.

A handler that overruns its timeout cannot be killed in-process: its client's stream is cut, what
the runtime sends later for it is discarded, and `ExecutionEnvironments` starts a fresh environment
in its place so the next request does not wait; the overrunning thread is turned away from `/next`
once its handler returns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import select
import socket
import socketserver
import sys
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from .emulation import (
    ERROR_BODY_TRAILER,
    ERROR_TYPE_HEADER,
    FUNCTION_ERROR,
    INVALID_PRELUDE,
    LAST_CHUNK,
    MAX_API_REQUEST_BYTES,
    MAX_PAYLOAD_BYTES,
    MISSING_AUTHENTICATION_TOKEN,
    REQUEST_TOO_LARGE,
    RESPONSE_MODE_HEADER,
    TOO_MANY_REQUESTS,
    BandwidthShape,
    BodyEnd,
    BodyPiece,
    CannedResponse,
    ChunkedDecoder,
    ChunkedEncodingError,
    PreludeFound,
    PreludeInvalid,
    PreludeSplitter,
    RequestTimings,
    access_denied,
    access_log_record,
    build_rest_proxy_event,
    decode_error_trailer,
    format_response_head,
    function_arn,
    function_error_body,
    new_trace_id,
    runtime_api_error,
    timeout_message,
)
from .emulation import Pacer as _Pacer
from .sigv4 import Credentials, SignedRequest, verify_request

RUNTIME_API_PREFIX = "/2018-06-01/"
_NEXT_PATH = "/2018-06-01/runtime/invocation/next"
_INIT_ERROR_PATH = "/2018-06-01/runtime/init/error"
_INVOCATION_PATH = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")
_READ_SIZE = 64 * 1024
_MAX_ERROR_BODY = 1024 * 1024
_KEPT_INVOCATIONS = 256  # answered ids remembered, so a late or repeated answer gets a clear 400

logger = logging.getLogger(__name__)


class _FallbackStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to stderr only while nobody has configured logging, so no line appears twice."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr  # looked up each time: tests and tools swap sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


if not logger.handlers:
    logger.addHandler(_FallbackStderrHandler())
if logger.level == logging.NOTSET:
    logger.setLevel(logging.INFO)  # one line per client request is the point of local mode


class LocalServer:
    """The Runtime API, `POST /invoke` and the API Gateway view on one port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7000,
        *,
        invocation_endpoint: str = "/invoke",
        stage_name: str = "prod",
        api_path: str = "/stream",
        timeout_seconds: float = 60.0,
        function_name: str = "function",
        region: str = "us-east-1",
        auth: str = "NONE",
        credentials: Credentials | None = None,
        concurrency: int | None = None,
        bandwidth_shape: BandwidthShape | None = None,
        throttle: Callable[[], bool] | None = None,
        access_log: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`auth` is "IAM" (SigV4 checked against `credentials`; none: every request is refused)
        or "NONE". `concurrency` caps the runtimes served at once (None: no cap, for a runtime
        played by hand). `throttle()` returns False when a request must get 429. `access_log`
        receives one record per client request (default: a JSON line on stderr).
        """
        if auth not in ("IAM", "NONE"):
            raise ValueError(f"auth must be 'IAM' or 'NONE', not {auth!r}")
        self.invocation_endpoint = invocation_endpoint
        self.stage_name = stage_name
        self.api_path = api_path
        self.timeout_seconds = timeout_seconds
        self.function_name = function_name
        self.region = region
        self.auth = auth
        self.credentials = credentials
        self.concurrency = concurrency
        self.bandwidth_shape = bandwidth_shape
        self.throttle = throttle
        self.access_log = access_log or _print_access_log
        self.clock = clock
        # Called when an invocation times out, to put a fresh execution environment in its place.
        self.replace_environment: Callable[[], None] | None = None
        self._httpd = _HttpServer((host, port), self)
        self.host: str = self._httpd.server_address[0]
        self.port: int = self._httpd.server_address[1]

        self._lock = threading.Condition()  # guards everything below
        self._pending: deque[_Invocation] = deque()
        self._handed_out: OrderedDict[str, _Invocation] = OrderedDict()
        self._init_error: bytes | None = None
        self._closing = False
        self._serving = False
        self._waiting_runtimes = 0  # /next calls waiting for work
        self._init_errors_owed = 0  # own environments that failed to load and will report it

    @property
    def runtime_api(self) -> str:
        """`host:port`, the value for AWS_LAMBDA_RUNTIME_API."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve until `shutdown()` or Ctrl-C (KeyboardInterrupt propagates after closing)."""
        with self._lock:
            if self._closing:
                return
            self._serving = True
        try:
            self._httpd.serve_forever(poll_interval=0.1)
        finally:
            with self._lock:
                self._serving = False
            self._close_everything()

    def start(self) -> threading.Thread:
        """Serve in a daemon thread and return it."""
        thread = threading.Thread(target=self.serve_forever, name="local-server", daemon=True)
        thread.start()
        return thread

    def shutdown(self) -> None:
        """Stop promptly and close every socket, including `/next` calls still waiting."""
        with self._lock:
            was_serving = self._serving
            self._closing = True
            self._lock.notify_all()
        if was_serving and threading.current_thread() is not self._httpd.serving_thread:
            self._httpd.shutdown()
        self._close_everything()

    # invocation queue

    def _submit(self, event: bytes, sink: _Sink, client: _ClientStream) -> _Invocation:
        invocation = _Invocation(str(uuid.uuid4()), event, sink, client)
        with self._lock:
            if self._closing:
                invocation.finish_with_error(
                    function_error_body("Runtime.Unavailable", "the local server is shutting down")
                )
            elif self._init_error is not None:
                # The runtime reported /init/error and has not come back: answer as Lambda does.
                invocation.finish_with_error(self._init_error)
            else:
                self._pending.append(invocation)
                self._lock.notify_all()
        return invocation

    def _wait(self, invocation: _Invocation) -> None:
        """Block the client's thread until its invocation is over; drop it if the client leaves."""
        while not invocation.finished.wait(0.1):
            with self._lock:
                queued = invocation in self._pending
                if queued and _peer_closed(invocation.client.connection):
                    self._pending.remove(invocation)
                    invocation.client.gone = True
                    invocation.finished.set()
                    logger.info("%s client disconnected before the function ran", invocation.id)

    def _surplus_runtime(self) -> bool:
        """More runtimes than `concurrency` would be serving: the one asking must go away.

        After a timeout, a replacement environment takes the place of the overrunning one; when
        the overrunning handler finally returns, whichever runtime asks for work last is
        turned away, so the count of environments comes back to `concurrency`.
        """
        if self.concurrency is None:
            return False
        busy = sum(1 for i in self._handed_out.values() if not i.finished.is_set())
        return self._waiting_runtimes + busy >= self.concurrency

    def _next(self) -> _Invocation | bool | None:
        """Hand the oldest queued invocation to the runtime; None when the server is closing,
        False when this runtime is one too many and must exit."""
        with self._lock:
            self._init_error = None  # a runtime asking for work has (re)started
            if self._surplus_runtime():
                return False
            self._waiting_runtimes += 1
            try:
                while not self._pending and not self._closing:
                    self._lock.wait()
            finally:
                self._waiting_runtimes -= 1
            if self._closing:
                return None
            invocation = self._pending.popleft()
            self._handed_out[invocation.id] = invocation
            while len(self._handed_out) > _KEPT_INVOCATIONS:
                self._handed_out.popitem(last=False)
        invocation.deadline = time.time() + self.timeout_seconds
        invocation.timer = threading.Timer(self.timeout_seconds, self._time_out, (invocation,))
        invocation.timer.daemon = True
        invocation.timer.start()
        return invocation

    def _give_back(self, invocation: _Invocation) -> None:
        """The runtime never received the invocation: queue it again, first in line."""
        if invocation.timer is not None:
            invocation.timer.cancel()
        with self._lock:
            self._handed_out.pop(invocation.id, None)
            if not invocation.finished.is_set():
                self._pending.appendleft(invocation)
                self._lock.notify_all()

    def _claim(self, request_id: str, what: str) -> tuple[_Invocation | None, str]:
        """Take the right to answer `request_id` once; an error message if it cannot be taken."""
        with self._lock:
            invocation = self._handed_out.get(request_id)
            if invocation is None:
                return None, f"unknown request id {request_id!r}"
            if invocation.answer_started:
                if what == "error" and invocation.answer_kind == "response":
                    return (
                        None,
                        f"the response for {request_id} has started: report errors in trailers",
                    )
                return None, f"request id {request_id} has already been answered"
            invocation.answer_started = True
            invocation.answer_kind = what
            return invocation, ""

    def _time_out(self, invocation: _Invocation) -> None:
        if invocation.finished.is_set():
            return
        logger.warning(timeout_message(invocation.id, self.timeout_seconds))
        invocation.timed_out = True
        invocation.client.timed_out = True
        if invocation.sink.committed:
            invocation.client.cut()  # also unblocks a relay stuck writing to a slow client
        seconds = f"{self.timeout_seconds:.2f}"
        body = function_error_body(
            "Sandbox.Timedout",
            f"RequestId: {invocation.id} Error: Task timed out after {seconds} seconds",
        )
        invocation.finish_with_error(body)
        if self.replace_environment is not None and not self._closing:
            self.replace_environment()

    def _environment_exited(
        self, request_id: str, error: BaseException, streamed: bool
    ) -> _Invocation | None:
        """An environment's handler ended it: its invocation fails as Lambda's does. When the
        stream has begun, its bytes are relayed first: the relay fails it at the stream's end
        (the invocation is returned, to wait for)."""
        code = error.code if isinstance(error, SystemExit) else 1
        if isinstance(code, str):
            print(code, file=sys.stderr)  # what Python prints for sys.exit("message")
            code = 1
        reason = (
            "Runtime exited without providing a reason"
            if code in (None, 0)
            else f"Runtime exited with error: exit status {code}"
        )
        message = f"RequestId: {request_id} Error: {reason}"
        logger.error(
            "%s the handler ended its execution environment (%s): %s; starting a fresh one",
            request_id,
            f"{type(error).__name__}({code!r})" if isinstance(error, SystemExit) else repr(error),
            reason,
        )
        with self._lock:
            invocation = self._handed_out.get(request_id)
        if invocation is None:
            return None
        body = function_error_body("Runtime.ExitError", message)
        if streamed:
            invocation.exit_error = body  # the relay fails it once the stream's socket closes
            return invocation
        invocation.finish_with_error(body)
        return None

    def _expect_init_error(self) -> None:
        with self._lock:
            self._init_errors_owed += 1

    def _running_here(self, request_id: str) -> None:
        invocation = self._handed_out.get(request_id)
        if invocation is not None:
            invocation.run_here = True

    def _from_own_environment(self, request_id: str | None) -> bool:
        """Whether a Runtime API answer can come from one of this process's environments: an
        invocation one of them runs, or an init error one of them is about to report. Without
        `ExecutionEnvironments` (a runtime played by hand) anyone may answer."""
        if self.replace_environment is None:
            return True
        with self._lock:
            if request_id is not None:
                invocation = self._handed_out.get(request_id)
                return invocation is not None and invocation.run_here
            if self._init_errors_owed > 0:
                self._init_errors_owed -= 1
                return True
            return False

    def _record_init_error(self, body: bytes) -> None:
        with self._lock:
            self._init_error = body
            failed = list(self._pending)
            self._pending.clear()
        for invocation in failed:
            invocation.finish_with_error(body)

    def _close_everything(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify_all()
            invocations = [*self._pending, *self._handed_out.values()]
            self._pending.clear()
        for invocation in invocations:
            if invocation.timer is not None:
                invocation.timer.cancel()
            if not invocation.finished.is_set():
                invocation.client.cut()
                invocation.finished.set()
        self._httpd.close_all()


# an invocation and its client


class _ClientStream:
    """The client's side of a request: writes straight to its socket, survives its departure."""

    def __init__(
        self,
        connection: socket.socket,
        request_id: str,
        shape: BandwidthShape | None = None,
    ) -> None:
        self.connection = connection
        self.request_id = request_id
        self.status: int | None = None
        self.body_bytes = 0
        self.gone = False  # the client went away
        self.cut_off = False  # we closed the stream on purpose
        self.timed_out = False
        self.timings = RequestTimings(time.monotonic())
        self._pacer = _Pacer(shape, time.monotonic, time.sleep) if shape else None

    def send_head(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.timings.all_headers = time.monotonic()
        self._send(format_response_head(status, headers))

    def send_chunk(self, data: bytes) -> None:
        self.send_body(data, chunked=True)

    def send_body(self, data: bytes, *, chunked: bool) -> None:
        """Body bytes, framed as a chunk or sent as they are (the response has Content-Length)."""
        if not data:
            return
        if self._pacer is not None and not (self.gone or self.cut_off):
            self._pacer.before_send(len(data))  # Lambda's bandwidth shape, when switched on
        if self.timings.first_content is None:
            self.timings.first_content = time.monotonic()
        self.body_bytes += len(data)
        if chunked:  # framed around the data, not copied into a new chunk
            self._send_parts((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            self._send(data)

    def send_end(self) -> None:
        self._send(LAST_CHUNK)

    def send_canned(self, response: CannedResponse, extra: list[tuple[str, str]]) -> None:
        self.status = response.status
        self.body_bytes += len(response.body)
        self.timings.all_headers = self.timings.first_content = time.monotonic()
        self._send(response.encode(extra))

    def cut(self) -> None:
        """Close without the terminating chunk: the client sees a truncated body (curl exit 18)."""
        self.cut_off = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, data: bytes) -> None:
        if data:
            self._send_parts((data,))

    def _send_parts(self, parts: tuple[bytes, ...]) -> None:
        """Send these bytes in one system call when the socket takes them all (it usually does)."""
        if self.gone or self.cut_off:
            return
        try:
            sent = self.connection.sendmsg(parts)
            total = sum(map(len, parts))
            if sent < total:
                self.connection.sendall(memoryview(b"".join(parts))[sent:])
        except OSError:
            self.gone = True
            if not self.cut_off:
                logger.info("%s client disconnected", self.request_id)


class _Sink(Protocol):
    """How one client view turns the function's stream into an HTTP response."""

    committed: bool  # the status line has gone out

    def begin(self, content_type: str) -> None: ...
    def data(self, data: bytes) -> None: ...
    def end(self) -> None: ...
    def fail(self, error_body: bytes) -> None: ...


class _InvokeSink:
    """`POST /invoke`: the function's bytes verbatim, as InvokeWithResponseStream gives them."""

    def __init__(self, client: _ClientStream) -> None:
        self.client = client
        self.committed = False
        self.request_id = ""

    def _lambda_headers(self) -> list[tuple[str, str]]:
        return [("x-amzn-RequestId", self.request_id), ("X-Amz-Executed-Version", "$LATEST")]

    def begin(self, content_type: str) -> None:
        self.committed = True
        head = [("Content-Type", content_type), ("Transfer-Encoding", "chunked")]
        self.client.send_head(200, head + self._lambda_headers())

    def data(self, data: bytes) -> None:
        self.client.send_chunk(data)

    def end(self) -> None:
        self.client.send_end()

    def fail(self, error_body: bytes) -> None:
        if self.committed:
            self.client.cut()
            return
        self.committed = True
        # What Lambda's Invoke API answers for an unhandled error: 200 and a flag header.
        response = CannedResponse(200, error_body, (("X-Amz-Function-Error", "Unhandled"),))
        self.client.send_canned(response, self._lambda_headers())


class _ApiGatewaySink:
    """The API Gateway view: the prelude gives the status and headers; the rest streams chunked."""

    def __init__(self, client: _ClientStream, api_request_id: str, head_only: bool) -> None:
        self.client = client
        self.api_request_id = api_request_id
        self.head_only = head_only
        self.committed = False
        self.rejected = False  # answered 500 for a bad prelude; the rest is discarded
        self.request_id = ""
        self._splitter = PreludeSplitter()
        self._length: int | None = None  # the function set Content-Length: bytes still owed
        self._overflowed = False

    def begin(self, content_type: str) -> None:
        pass  # API Gateway takes the content type from the prelude's headers

    def data(self, data: bytes) -> None:
        if self.rejected:
            return
        if self.committed:
            self._body(data)
            return
        result = self._splitter.feed(data)
        if isinstance(result, PreludeInvalid):
            self._reject(result)
        elif isinstance(result, PreludeFound):
            self.committed = True
            self.client.send_head(result.prelude.status_code, self._headers(result))
            self._body(result.remaining)

    def _headers(self, found: PreludeFound) -> list[tuple[str, str]]:
        """The prelude's headers; the body goes chunked unless the function set Content-Length
        (STREAMING-PROTOCOL.md 2)."""
        pairs = found.prelude.header_pairs()
        lengths = {value.strip() for name, value in pairs if name.lower() == "content-length"}
        chunked = any(
            name.lower() == "transfer-encoding" and "chunked" in value.lower()
            for name, value in pairs
        )
        if not chunked and len(lengths) == 1 and (length := lengths.pop()).isdigit():
            self._length = int(length)
        headers = [
            (name, value)
            for name, value in pairs
            if name.lower() not in ("content-length", "transfer-encoding", "connection")
        ]
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.insert(0, ("Content-Type", "application/json"))  # REST API's default
        if self._length is None:
            headers.append(("Transfer-Encoding", "chunked"))
        else:
            headers.append(("Content-Length", str(self._length)))
        headers.append(("x-amzn-RequestId", self.api_request_id))
        return headers

    def _body(self, data: bytes) -> None:
        if self.head_only or not data:
            return
        if self._length is None:
            self.client.send_chunk(data)
            return
        if len(data) > self._length and not self._overflowed:
            self._overflowed = True
            logger.warning(
                "%s the function wrote past its Content-Length (%d bytes): the rest is dropped",
                self.request_id,
                self.client.body_bytes + self._length,
            )
        data = data[: self._length]
        self._length -= len(data)
        self.client.send_body(data, chunked=False)

    def end(self) -> None:
        if self.rejected:
            return
        if not self.committed:
            self._reject(self._splitter.finish())
        elif self.head_only:
            return
        elif self._length is None:
            self.client.send_end()
        elif self._length > 0:
            logger.warning(
                "%s the function ended %d bytes short of its Content-Length: the body is cut",
                self.request_id,
                self._length,
            )
            self.client.cut()

    def fail(self, error_body: bytes) -> None:
        if self.rejected:
            return
        if self.committed:
            self.client.cut()
            return
        self.committed = True
        self.client.send_canned(FUNCTION_ERROR, [("x-amzn-RequestId", self.api_request_id)])

    def _reject(self, invalid: PreludeInvalid) -> None:
        logger.error("%s invalid HTTP integration prelude: %s", self.request_id, invalid.reason)
        self.rejected = True
        self.committed = True
        self.client.send_canned(INVALID_PRELUDE, [("x-amzn-RequestId", self.api_request_id)])


class _Invocation:
    """One queued or running invocation. `io_lock` serialises every write to its client."""

    def __init__(self, request_id: str, event: bytes, sink: _Sink, client: _ClientStream) -> None:
        self.id = request_id
        self.event = event
        self.sink = sink
        self.client = client
        sink.request_id = request_id  # type: ignore[attr-defined]
        self.io_lock = threading.Lock()
        self.finished = threading.Event()  # the client's response is over (whatever happened)
        self.timer: threading.Timer | None = None
        self.deadline = 0.0
        self.trace = ""
        self.timed_out = False
        self.answer_started = False  # the runtime began /response or /error for it
        self.answer_kind = ""
        self.run_here = False  # one of this process's execution environments runs it
        self.exit_error: bytes | None = None  # its handler ended the environment mid-stream

    def relay(self, data: bytes) -> None:
        with self.io_lock:
            if not self.finished.is_set():
                self.sink.data(data)

    def begin(self, content_type: str) -> None:
        with self.io_lock:
            if not self.finished.is_set():
                self.sink.begin(content_type)

    def finish_ok(self) -> None:
        with self.io_lock:
            if not self.finished.is_set():
                self.sink.end()
                self._done()

    def finish_with_error(self, error_body: bytes) -> None:
        with self.io_lock:
            if not self.finished.is_set():
                self.sink.fail(error_body)
                self._done()

    def _done(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.finished.set()


# the HTTP shell


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C must not wait for connections
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], local: LocalServer) -> None:
        self.local = local
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.serving_thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._closed = False
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self.serving_thread = threading.current_thread()
        super().serve_forever(poll_interval)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            if self._closed:
                self.shutdown_request(request)
                return
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A connection reset by a client is routine here; anything else is a bug worth a trace.
        if not isinstance(sys.exc_info()[1], OSError):
            logger.exception("unexpected error serving %s", client_address)

    def close_all(self) -> None:
        with self._connections_lock:
            connections = [] if self._closed else list(self._connections)
            self._closed = True
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        # Every caller closes the listener (closing twice is harmless): a second caller that
        # returned early could otherwise see it still open while the first is busy above.
        self.server_close()


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked responses
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # we log one line per client request ourselves

    def __getattr__(self, name: str) -> Any:
        # API Gateway's ANY: every method goes through the same router.
        if name.startswith("do_"):
            return self._route
        raise AttributeError(name)

    def _route(self) -> None:
        local = self.server.local
        target = urlsplit(self.path)
        path, query = target.path, target.query
        if path.startswith(RUNTIME_API_PREFIX):
            self._runtime_api(path)
            return
        received_at = local.clock()
        request_id = str(uuid.uuid4())
        client = _ClientStream(self.connection, request_id, local.bandwidth_shape)
        resource_path: str | None = None
        self._lambda_request_id = ""
        try:
            if path == local.invocation_endpoint and self.command == "POST":
                self._invoke(client)
            elif path == f"/{local.stage_name}{local.api_path}":
                resource_path = local.api_path
                self._api_gateway(client, path, query)
            else:
                self._drain_body()
                client.send_canned(MISSING_AUTHENTICATION_TOKEN, [("x-amzn-RequestId", request_id)])
        except _BadRequest as error:
            self.close_connection = True
            canned = REQUEST_TOO_LARGE if error.status == 413 else None
            client.send_canned(
                canned or CannedResponse(400, json.dumps({"message": str(error)}).encode()),
                [("x-amzn-RequestId", request_id)],
            )
        client.timings.finished = time.monotonic()
        if client.gone or client.cut_off:
            self.close_connection = True
        outcome = (
            "timed out"
            if client.timed_out
            else "stream cut"
            if client.cut_off
            else "client disconnected"
            if client.gone
            else ""
        )
        record = access_log_record(
            request_id=client.request_id,
            source_ip=self.client_address[0],
            request_time=received_at,
            method=self.command,
            resource_path=resource_path,
            path=path,
            protocol=self.request_version,
            status=client.status,
            response_length=client.body_bytes,
            timings=client.timings,
            # The integration's mode (STREAM), as API Gateway logs it; None when no function ran.
            transfer_mode="STREAM" if client.timings.integration_started else None,
            outcome=outcome,
        )
        if self._lambda_request_id and self._lambda_request_id != client.request_id:
            record["integration.requestId"] = self._lambda_request_id
        local.access_log(record)

    # client views

    def _invoke(self, client: _ClientStream) -> None:
        event = self._read_body(MAX_PAYLOAD_BYTES)
        if (refusal := _invalid_invoke_payload(event)) is not None:
            client.send_canned(refusal, [("x-amzn-RequestId", client.request_id)])
            return
        sink = _InvokeSink(client)
        client.timings.integration_started = time.monotonic()
        invocation = self.server.local._submit(event, sink, client)
        client.request_id = invocation.id  # the log line carries Lambda's request id
        self.server.local._wait(invocation)

    def _api_gateway(self, client: _ClientStream, raw_path: str, query: str) -> None:
        local = self.server.local
        reply_headers = [("x-amzn-RequestId", client.request_id)]
        body = self._read_body(MAX_API_REQUEST_BYTES)
        access_key = None
        if local.auth == "IAM":
            signed = SignedRequest(self.command, raw_path, query, tuple(self.headers.items()), body)
            keys = local.credentials
            known = {keys.access_key_id: keys} if keys else {}
            verdict = verify_request(signed, known, region=local.region, now=local.clock())
            if not verdict.allowed:
                logger.info("%s IAM auth refused: %s", client.request_id, verdict.message)
                denied = access_denied(verdict.error_type, verdict.message)
                client.send_canned(denied, reply_headers)
                return
            access_key = verdict.access_key_id
        if local.throttle is not None and not local.throttle():
            client.send_canned(TOO_MANY_REQUESTS, reply_headers)
            return
        path = raw_path[len(local.stage_name) + 1 :]
        headers = list(self.headers.items())
        present = {name.lower() for name, _ in headers}
        for name, value in (
            ("X-Forwarded-For", self.client_address[0]),
            ("X-Forwarded-Port", str(local.port)),
            ("X-Forwarded-Proto", "http"),
            ("X-Amzn-Trace-Id", new_trace_id(local.clock()).split(";")[0]),
        ):
            if name.lower() not in present:
                headers.append((name, value))
        event = build_rest_proxy_event(
            self.command,
            path,
            query,
            headers,
            body,
            stage=local.stage_name,
            resource_path=local.api_path,
            source_ip=self.client_address[0],
            request_id=client.request_id,
            now=local.clock(),
            access_key=access_key,
        )
        payload = json.dumps(event).encode()
        if len(payload) > MAX_PAYLOAD_BYTES:
            # Within API Gateway's 10 MB but past Lambda's 6 MiB invocation payload.
            logger.warning(
                "%s the event is %d bytes, past Lambda's %d-byte invocation payload limit",
                client.request_id,
                len(payload),
                MAX_PAYLOAD_BYTES,
            )
            raise _BadRequest(413, "the event exceeds Lambda's invocation payload limit")
        sink = _ApiGatewaySink(client, client.request_id, head_only=self.command == "HEAD")
        client.timings.integration_started = time.monotonic()
        invocation = local._submit(payload, sink, client)
        self._lambda_request_id = invocation.id
        local._wait(invocation)

    # the Runtime API

    def _runtime_api(self, path: str) -> None:
        try:
            if path == _NEXT_PATH:
                self._require("GET")
                self._next()
            elif path == _INIT_ERROR_PATH:
                self._require("POST")
                self._require_own_environment(None)
                self._init_error()
            elif match := _INVOCATION_PATH.match(path):
                self._require("POST")
                request_id, action = match.groups()
                self._require_own_environment(request_id)
                if action == "response":
                    self._response(request_id)
                else:
                    self._error(request_id)
            else:
                raise _BadRequest(404, f"no Runtime API route {self.command} {path}")
        except _BadRequest as error:
            self._runtime_reply(
                runtime_api_error(error.status, _error_type(error.status), str(error))
            )
            self.close_connection = True  # the request body may be unread

    def _require(self, method: str) -> None:
        if self.command != method:
            raise _BadRequest(405, f"{self.command} is not allowed here; use {method}")

    def _require_own_environment(self, request_id: str | None) -> None:
        if not self.server.local._from_own_environment(request_id):
            logger.warning(
                "refused %s %s from %s: only local mode's own execution environments may use it",
                self.command,
                self.path,
                self.client_address[0],
            )
            raise _BadRequest(403, "only local mode's own execution environments may use this")

    def _runtime_reply(self, response: CannedResponse) -> None:
        try:
            self.connection.sendall(response.encode())
        except OSError:
            self.close_connection = True

    def _next(self) -> None:
        local = self.server.local
        invocation = local._next()
        if invocation is None:
            self.close_connection = True  # shutting down: the runtime sees the API go away
            return
        if invocation is False:
            # One environment too many (see LocalServer._surplus_runtime): a 500 from the Runtime
            # API tells a runtime to exit.
            self.close_connection = True
            self._runtime_reply(
                runtime_api_error(500, "Runtime.Retired", "this execution environment is retired")
            )
            return
        now = datetime.now(UTC)
        invocation.trace = new_trace_id(now)
        head = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(invocation.event))),
            ("Lambda-Runtime-Aws-Request-Id", invocation.id),
            ("Lambda-Runtime-Deadline-Ms", str(int(invocation.deadline * 1000))),
            (
                "Lambda-Runtime-Invoked-Function-Arn",
                function_arn(local.region, local.function_name),
            ),
            ("Lambda-Runtime-Trace-Id", invocation.trace),
        ]
        try:
            self.connection.sendall(format_response_head(200, head) + invocation.event)
        except OSError:
            self.close_connection = True
            local._give_back(invocation)

    def _response(self, request_id: str) -> None:
        mode = self.headers.get(RESPONSE_MODE_HEADER)
        if mode is not None and mode != "streaming":
            raise _BadRequest(
                400, f"{RESPONSE_MODE_HEADER} must be 'streaming' or absent, not {mode!r}"
            )
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        if mode == "streaming" and not chunked:
            raise _BadRequest(400, "a streaming response must use Transfer-Encoding: chunked")
        length = 0 if chunked else self._content_length()
        invocation, problem = self.server.local._claim(request_id, "response")
        if invocation is None:
            raise _BadRequest(400, problem)
        if length > MAX_PAYLOAD_BYTES:
            invocation.finish_with_error(
                function_error_body(
                    "Function.ResponseSizeTooLarge",
                    "Response payload size exceeded maximum allowed payload size "
                    f"({MAX_PAYLOAD_BYTES} bytes).",
                )
            )
            raise _BadRequest(413, f"buffered responses are limited to {MAX_PAYLOAD_BYTES} bytes")
        invocation.begin(self.headers.get("Content-Type") or "application/octet-stream")
        try:
            if chunked:
                self._relay_chunked(invocation)
            else:
                self._relay_buffered(invocation, length)
        except _BadRequest as error:
            if invocation.exit_error is not None:  # the handler ended its environment mid-stream
                invocation.finish_with_error(invocation.exit_error)
                raise
            if not self.server.local._closing:  # our own shutdown cuts streams; no noise for that
                logger.error("%s bad response from the runtime: %s", request_id, error)
            invocation.finish_with_error(function_error_body("Runtime.InvalidResponse", str(error)))
            raise
        self._runtime_reply(CannedResponse(202, b'{"status":"OK"}'))
        if chunked:
            self.close_connection = True  # the runtime closes after each streamed response

    def _relay_chunked(self, invocation: _Invocation) -> None:
        decoder = ChunkedDecoder()
        while True:
            data = self._read_some()
            try:
                events = decoder.feed(data)
            except ChunkedEncodingError as error:
                raise _BadRequest(400, f"malformed chunked body: {error}") from None
            for event in events:
                if isinstance(event, BodyPiece):
                    invocation.relay(event.data)
                elif isinstance(event, BodyEnd):
                    self._end_of_stream(invocation, event)
                    return
            if not data:
                raise _BadRequest(400, "the runtime closed the stream before its last chunk")

    def _end_of_stream(self, invocation: _Invocation, end: BodyEnd) -> None:
        error_type = end.trailer(ERROR_TYPE_HEADER)
        if not error_type:
            invocation.finish_ok()
            return
        encoded = end.trailer(ERROR_BODY_TRAILER)
        error = decode_error_trailer(encoded) if encoded else {"errorType": error_type}
        _log_function_error(invocation.id, "error after the response started", error_type, error)
        invocation.finish_with_error(json.dumps(error).encode())

    def _relay_buffered(self, invocation: _Invocation, length: int) -> None:
        while length > 0:
            data = self.rfile.read1(min(length, _READ_SIZE))
            if not data:
                raise _BadRequest(400, "the runtime closed the connection mid-response")
            length -= len(data)
            invocation.relay(data)
        invocation.finish_ok()

    def _error(self, request_id: str) -> None:
        error_type, body = self._read_error()
        invocation, problem = self.server.local._claim(request_id, "error")
        if invocation is None:
            raise _BadRequest(400, problem)
        _log_function_error(request_id, "function error", error_type, _as_json(body, error_type))
        invocation.finish_with_error(body)
        self._runtime_reply(CannedResponse(202, b'{"status":"OK"}'))

    def _init_error(self) -> None:
        error_type, body = self._read_error()
        _log_function_error("init", "initialization error", error_type, _as_json(body, error_type))
        self.server.local._record_init_error(body)
        self._runtime_reply(CannedResponse(202, b'{"status":"OK"}'))

    def _read_error(self) -> tuple[str, bytes]:
        error_type = self.headers.get(ERROR_TYPE_HEADER) or "Runtime.Unknown"
        body = self._read_body(_MAX_ERROR_BODY)
        if _as_json(body, error_type) is None:
            # Keep the error rather than refuse it: wrap what came in a proper error object.
            body = function_error_body(error_type, body.decode("utf-8", "replace"))
        return error_type, body

    # request bodies

    def _content_length(self) -> int:
        text = self.headers.get("Content-Length")
        if text is None:
            return 0
        if len(self.headers.get_all("Content-Length") or ()) > 1:
            # RFC 9112 6.3: more than one length leaves the body's end unknown.
            raise _BadRequest(400, "more than one Content-Length header")
        if not text.strip().isdigit():
            raise _BadRequest(400, f"invalid Content-Length {text!r}")
        return int(text)

    def _read_some(self) -> bytes:
        try:
            return self.rfile.read1(_READ_SIZE)
        except OSError:
            return b""

    def _read_body(self, limit: int) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            decoder = ChunkedDecoder()
            body = bytearray()
            while not decoder.done:
                data = self._read_some()
                if not data:
                    raise _BadRequest(400, "the connection closed mid-body")
                try:
                    pieces = decoder.feed(data)
                except ChunkedEncodingError as error:
                    raise _BadRequest(400, f"malformed chunked body: {error}") from None
                for piece in pieces:
                    if isinstance(piece, BodyPiece):
                        body += piece.data
                if len(body) > limit:
                    raise _BadRequest(413, f"the body exceeds {limit} bytes")
            return bytes(body)
        length = self._content_length()
        if length > limit:
            raise _BadRequest(413, f"the body exceeds {limit} bytes")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise _BadRequest(400, "the connection closed mid-body")
        return body

    def _drain_body(self) -> None:
        try:
            self._read_body(MAX_PAYLOAD_BYTES)
        except _BadRequest:
            self.close_connection = True


# helpers


def _peer_closed(connection: socket.socket) -> bool:
    """Whether the client has closed its end (checked without consuming anything)."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _as_json(body: bytes, error_type: str) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _invalid_invoke_payload(event: bytes) -> CannedResponse | None:
    """What Lambda's Invoke answers for a payload that is not JSON (an empty one is allowed)."""
    if not event.strip():
        return None
    try:
        json.loads(event)
    except ValueError as error:
        message = f"Could not parse request body into json: {error}"
        body = json.dumps({"Type": "User", "message": message}).encode()
        return CannedResponse(400, body, (("x-amzn-ErrorType", "InvalidRequestContentException"),))
    return None


def _log_function_error(request_id: str, what: str, error_type: str, error: Any) -> None:
    error = error if isinstance(error, dict) else {}
    lines = [
        f"{request_id} {what} [{error_type}] "
        f"{error.get('errorType', '')}: {error.get('errorMessage', '')}"
    ]
    stack = error.get("stackTrace")
    if isinstance(stack, list):
        lines += [f"    {line}".rstrip() for line in stack]
    logger.error("\n".join(lines))


def _error_type(status: int) -> str:
    return {403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed", 413: "RequestTooLarge"}.get(
        status, "InvalidRequest"
    )


_access_log_lock = threading.Lock()


def _print_access_log(record: dict[str, Any]) -> None:
    """The default access log: one JSON object per line on stderr, like a JSON access-log format."""
    line = json.dumps(record, separators=(",", ":"))
    with _access_log_lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


# execution environments


class ExecutionEnvironments:
    """N runtime loops (threads), each an execution environment with its own `/next`.

    A loop is the very runtime that runs in Lambda (`runtime.serve`) pointed at the local Runtime
    API. When an invocation times out, a fresh environment is started in place of the one still
    stuck in the handler (Lambda would stop and re-initialise it; a thread cannot be stopped).
    A handler that ends its environment (`sys.exit()`) fails its invocation with
    `Runtime.ExitError`, and a fresh environment takes its place. A handler that cannot be loaded
    stops the server: `init_failed` says so.
    """

    def __init__(self, server: LocalServer, handler: Any, count: int = 1) -> None:
        if count < 1:
            raise ValueError(f"at least one execution environment is needed, not {count}")
        self.server = server
        self.handler = handler
        self.count = count
        self.init_failed = False
        self.started = 0
        server.concurrency = count
        server.replace_environment = self._start_one

    def start(self) -> None:
        for _ in range(self.count):
            self._start_one()

    def _start_one(self) -> None:
        self.started += 1
        name = f"lambda-runtime-{self.started}"
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        from .runtime import HandlerInitError, serve  # the same loop as in Lambda

        guard = _ExitGuard(self.handler, self.server)
        try:
            serve(guard.loaded, self.server.runtime_api)
        except HandlerInitError:
            self.init_failed = True
            self.server.shutdown()
        except BaseException as error:  # the handler ended its environment (sys.exit() or worse)
            if guard.request_id and not self.server._closing:
                streamed = getattr(guard.writer, "started", False)
                relayed = self.server._environment_exited(guard.request_id, error, streamed)
                if relayed is not None:  # close its stream as the end of a process would
                    guard.writer._sink.abandon()
                    relayed.finished.wait(self.server.timeout_seconds)  # not busy any more
                self._start_one()  # as Lambda does: a fresh environment for the next request
                return
            logger.error("the handler ended its execution environment while loading: %r", error)
            self.init_failed = True
            self.server.shutdown()


class _ExitGuard:
    """Remembers which invocation the environment is running, so that a handler ending its
    environment (``sys.exit()``) fails that invocation as Lambda does: ``Runtime.ExitError``.
    It also tells the server, in-process, which answers the Runtime API may accept: an init
    error the runtime is about to report, the invocations this environment runs.

    ``loaded`` is a class: ``serve`` instantiates it where it loads handlers, so a handler that
    cannot be loaded is still reported by the runtime's own ``/init/error`` path.
    """

    def __init__(self, handler: Any, server: LocalServer) -> None:
        from .runtime import HandlerInitError, as_handler_function, load_handler

        guard = self
        self.request_id = ""
        self.writer: Any = None

        class Loaded:
            def __init__(self) -> None:
                try:
                    if isinstance(handler, str):
                        self._handle = load_handler(handler)
                    else:
                        self._handle = as_handler_function(handler)
                except HandlerInitError:
                    server._expect_init_error()  # the runtime reports it next, to /init/error
                    raise

            def handle(self, event: bytes, writer: Any, context: Any) -> Any:
                guard.request_id, guard.writer = context.aws_request_id, writer
                server._running_here(guard.request_id)
                return self._handle(event, writer, context)

        self.loaded = Loaded
