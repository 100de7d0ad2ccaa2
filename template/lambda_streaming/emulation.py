"""Sans-I/O parts of local mode: bytes in, data out, no sockets.

`local_server.py` is the thin shell that moves bytes between sockets and these pieces:

- `ChunkedDecoder`: the runtime's streamed `/response` body (HTTP/1.1 chunked transfer coding,
  with the error trailers of STREAMING-PROTOCOL.md 1.1), decoded incrementally;
- `PreludeSplitter`: the HTTP integration prelude (JSON, then 8 NUL bytes, within 16 KB) split off
  the front of the function's stream, as API Gateway REST does in `STREAM` mode;
- `build_rest_proxy_event`: an HTTP request turned into the REST proxy event, payload format 1.0;
- the error bodies API Gateway and Lambda answer with, and small framing helpers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

# Headers and fields of the Runtime API that both sides must spell the same way.
RESPONSE_MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"

PRELUDE_DELIMITER = b"\x00" * 8
# API Gateway reads at most this much of the stream looking for the delimiter.
PRELUDE_LIMIT = 16 * 1024
# Synchronous invocation payloads (event and buffered response) are capped at 6 MiB.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# API Gateway's request payload quota is "10 MB"; local mode reads it as 10 MiB (a choice).
MAX_API_REQUEST_BYTES = 10 * 1024 * 1024

ACCOUNT_ID = "123456789012"

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_TOKEN_STR = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HEX = re.compile(rb"^[0-9A-Fa-f]+$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# chunked decoding


class ChunkedEncodingError(ValueError):
    """The chunked body is malformed; the message says where."""


@dataclass(frozen=True)
class BodyPiece:
    """Some bytes of the body, handed on as soon as they arrived (a chunk may come in pieces)."""

    data: bytes


@dataclass(frozen=True)
class BodyEnd:
    """The zero-length chunk and the trailer section after it have arrived."""

    trailers: tuple[tuple[str, str], ...] = ()

    def trailer(self, name: str) -> str | None:
        """The value of trailer `name` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.trailers:
            if key.lower() == wanted:
                return value
        return None


class ChunkedDecoder:
    """Incremental decoder of an HTTP/1.1 chunked body, fed arbitrary splits of the bytes.

    `feed` returns what became known: `BodyPiece`s (never empty) and at last one `BodyEnd`.
    Bytes after the end are kept in `unused`. Malformed input raises `ChunkedEncodingError`.
    """

    def __init__(self, *, max_line_bytes: int = 8 * 1024, max_trailer_bytes: int = 64 * 1024):
        self._max_line = max_line_bytes
        self._max_trailer = max_trailer_bytes
        self._buffer = bytearray()
        self._state = "size"  # size -> data -> data_end -> size ... -> trailers -> done
        self._remaining = 0
        self._trailers: list[tuple[str, str]] = []
        self._trailer_bytes = 0

    @property
    def done(self) -> bool:
        return self._state == "done"

    @property
    def unused(self) -> bytes:
        return bytes(self._buffer) if self.done else b""

    def feed(self, data: bytes) -> list[BodyPiece | BodyEnd]:
        if self.done:
            self._buffer += data
            return []
        if self._buffer:  # a line began in the last feed (only lines are ever kept back)
            data = bytes(self._buffer) + data
            self._buffer.clear()
        events: list[BodyPiece | BodyEnd] = []
        position, size = 0, len(data)
        while not self.done:
            if self._state == "data":
                if position == size:
                    break
                take = min(self._remaining, size - position)
                # Body bytes go on as slices of what arrived, never through a buffer: one copy
                # at most, none when a read holds exactly the rest of a chunk.
                whole = position == 0 and take == size
                events.append(BodyPiece(data if whole else data[position : position + take]))
                position += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "data_end"
                continue
            end = data.find(b"\n", position, position + self._max_line + 1)
            if end < 0:
                if size - position > self._max_line:
                    raise ChunkedEncodingError("line too long in chunked body")
                self._buffer += data[position:]
                break
            line = data[position:end]
            position = end + 1
            # CRLF is the rule; a bare LF is tolerated as most HTTP parsers do.
            if line.endswith(b"\r"):
                line = line[:-1]
            if self._state == "size":
                self._read_size(line)
            elif self._state == "data_end":
                if line:
                    raise ChunkedEncodingError("chunk data longer than its announced size")
                self._state = "size"
            else:  # trailers
                if not line:
                    self._state = "done"
                    events.append(BodyEnd(tuple(self._trailers)))
                else:
                    self._read_trailer(line)
        if self.done and position < size:
            self._buffer += data[position:]  # bytes after the end: `unused`
        return events

    def _read_size(self, line: bytes) -> None:
        size_text = line.split(b";", 1)[0].strip()
        if not _HEX.match(size_text) or len(size_text) > 16:
            raise ChunkedEncodingError(f"invalid chunk size line {line[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            self._state = "trailers"
        else:
            self._remaining = size
            self._state = "data"

    def _read_trailer(self, line: bytes) -> None:
        self._trailer_bytes += len(line)
        if self._trailer_bytes > self._max_trailer:
            raise ChunkedEncodingError("trailer section too large")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name):
            raise ChunkedEncodingError(f"invalid trailer field {line[:40]!r}")
        self._trailers.append((name.decode("ascii"), value.strip().decode("latin-1")))


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body; empty data gives nothing (a zero chunk would end the body)."""
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def format_response_head(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    """Status line and header section of an HTTP/1.1 response."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


# the prelude


@dataclass(frozen=True)
class HttpPrelude:
    """What API Gateway REST reads from the prelude; everything else in it is ignored."""

    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    multi_value_headers: dict[str, list[str]] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)

    def header_pairs(self) -> list[tuple[str, str]]:
        """Response headers: `multiValueHeaders` wins a clash; each cookie is its own Set-Cookie."""
        multi_names = {name.lower() for name in self.multi_value_headers}
        pairs = [(k, v) for k, v in self.headers.items() if k.lower() not in multi_names]
        for name, values in self.multi_value_headers.items():
            pairs += [(name, value) for value in values]
        pairs += [("Set-Cookie", cookie) for cookie in self.cookies]
        return pairs


@dataclass(frozen=True)
class PreludeNeedMore:
    """The delimiter has not arrived yet; feed more bytes."""


@dataclass(frozen=True)
class PreludeFound:
    """The prelude, and the bytes of the body that came in the same feed after the delimiter."""

    prelude: HttpPrelude
    remaining: bytes


@dataclass(frozen=True)
class PreludeInvalid:
    """No valid prelude: API Gateway answers 500. `reason` is for the log."""

    reason: str


PreludeResult = PreludeNeedMore | PreludeFound | PreludeInvalid


class PreludeSplitter:
    """Incremental splitter of the HTTP integration prelude off the front of the stream.

    The prelude JSON may hold no NUL byte, so the first NUL starts the delimiter; the delimiter
    must end within the first `PRELUDE_LIMIT` bytes. Once a result other than `PreludeNeedMore`
    has been returned, the splitter is finished and further feeds are a mistake.
    """

    def __init__(self, limit: int = PRELUDE_LIMIT):
        self._limit = limit
        self._buffer = bytearray()

    def feed(self, data: bytes) -> PreludeResult:
        self._buffer += data
        nul = self._buffer.find(b"\x00")
        if nul < 0:
            if len(self._buffer) > self._limit - len(PRELUDE_DELIMITER):
                return PreludeInvalid(f"no prelude delimiter within the first {self._limit} bytes")
            return PreludeNeedMore()
        end = nul + len(PRELUDE_DELIMITER)
        if end > self._limit:
            return PreludeInvalid(f"prelude delimiter ends past the first {self._limit} bytes")
        seen = self._buffer[nul:end]
        if seen.count(0) != len(seen):
            return PreludeInvalid("the prelude is followed by fewer than 8 NUL bytes")
        if len(seen) < len(PRELUDE_DELIMITER):
            return PreludeNeedMore()
        parsed = parse_prelude(bytes(self._buffer[:nul]))
        if isinstance(parsed, PreludeInvalid):
            return parsed
        return PreludeFound(parsed, bytes(self._buffer[end:]))

    def finish(self) -> PreludeInvalid:
        """The stream ended while the splitter still needed more."""
        return PreludeInvalid("the stream ended before the prelude delimiter")


def parse_prelude(data: bytes) -> HttpPrelude | PreludeInvalid:
    """Parse and check the prelude JSON (the bytes before the delimiter)."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return PreludeInvalid(f"the prelude is not UTF-8 JSON: {error}")
    if not isinstance(document, dict):
        return PreludeInvalid("the prelude is not a JSON object")

    status = document.get("statusCode", 200)
    if status is None:
        status = 200  # unconfirmed on AWS; clients assume 200 (STREAMING-PROTOCOL.md 2)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return PreludeInvalid(f"statusCode {status!r} is not an integer from 100 to 599")

    headers = document.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return PreludeInvalid("headers must map names to strings")
    multi = document.get("multiValueHeaders") or {}
    if not isinstance(multi, dict) or not all(
        isinstance(values, list) and all(isinstance(v, str) for v in values)
        for values in multi.values()
    ):
        return PreludeInvalid("multiValueHeaders must map names to lists of strings")
    cookies = document.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        return PreludeInvalid("cookies must be a list of strings")

    prelude = HttpPrelude(status, dict(headers), {k: list(v) for k, v in multi.items()}, cookies)
    for name, value in prelude.header_pairs():
        if not _TOKEN_STR.match(name):
            return PreludeInvalid(f"invalid header name {name!r}")
        # CR or LF would let a value start a new header line (header injection).
        if "\r" in value or "\n" in value or "\x00" in value:
            return PreludeInvalid(f"header {name!r} has CR, LF or NUL in its value")
    return prelude


# the REST proxy event


def build_rest_proxy_event(
    method: str,
    path: str,
    query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    stage: str,
    resource_path: str,
    source_ip: str,
    request_id: str,
    now: datetime,
    access_key: str | None = None,
) -> dict[str, Any]:
    """The REST API proxy event (payload format 1.0) API Gateway would send for this request.

    `path` is the path after the stage (what the function sees as `path`); `query` is the raw query
    string; `headers` keep their order and spelling; `now` is an aware datetime. Fields API Gateway
    sends as null when empty are null here too; a body that is not UTF-8 is base64-encoded.
    `access_key` is the key id of a request that passed IAM auth (`identity.accessKey`).
    """
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value  # like API Gateway, the last value wins the single map
        multi_headers.setdefault(name, []).append(value)

    single_query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        single_query[name] = value
        multi_query.setdefault(name, []).append(value)

    event_body: str | None
    is_base64 = False
    if not body:
        event_body = None
    else:
        try:
            event_body = body.decode("utf-8")
        except UnicodeDecodeError:
            event_body = base64.b64encode(body).decode("ascii")
            is_base64 = True

    lower_headers = {name.lower(): value for name, value in headers}
    domain_name = lower_headers.get("host", "localhost").split(":")[0] or "localhost"
    now = now.astimezone(UTC)
    request_time = format_request_time(now)
    method = method.upper()
    return {
        "resource": resource_path,
        "path": path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": _stable_id(resource_path, 6),
            "resourcePath": resource_path,
            "httpMethod": method,
            "extendedRequestId": _stable_id(request_id, 16),
            "requestTime": request_time,
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": domain_name.split(".")[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": access_key,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": lower_headers.get("user-agent"),
                "user": None,
            },
            "domainName": domain_name,
            "apiId": "local00api",
        },
        "body": event_body,
        "isBase64Encoded": is_base64,
    }


def _stable_id(seed: str, length: int) -> str:
    """A short lowercase id derived from `seed`, so the same input always gives the same id."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


# ids and error bodies


def new_trace_id(now: datetime) -> str:
    """A plausible X-Ray trace header: root id from the time, random parent, not sampled."""
    epoch = int(now.timestamp())
    return f"Root=1-{epoch:08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def function_arn(region: str, function_name: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"


@dataclass(frozen=True)
class CannedResponse:
    """A complete error response as API Gateway or Lambda gives it."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self, extra_headers: Iterable[tuple[str, str]] = ()) -> bytes:
        head = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(self.body))),
            *self.headers,
            *extra_headers,
        ]
        return format_response_head(self.status, head) + self.body


# What a REST API answers for a path or method it does not define (and for unsigned requests).
MISSING_AUTHENTICATION_TOKEN = CannedResponse(
    403,
    b'{"message":"Missing Authentication Token"}',
    (("x-amzn-ErrorType", "MissingAuthenticationTokenException"),),
)
# The function failed (or timed out) before the prelude: a proxy integration answers 502.
FUNCTION_ERROR = CannedResponse(
    502,
    b'{"message": "Internal server error"}',
    (("x-amzn-ErrorType", "InternalServerErrorException"),),
)
# The stream carried no valid prelude within 16 KB: API Gateway answers 500.
INVALID_PRELUDE = CannedResponse(
    500,
    b'{"message": "Internal server error"}',
    (("x-amzn-ErrorType", "InternalServerErrorException"),),
)
REQUEST_TOO_LARGE = CannedResponse(413, b'{"message":"Request Entity Too Large"}')
# The stage's or method's throttling bucket is empty.
TOO_MANY_REQUESTS = CannedResponse(
    429,
    b'{"message":"Too Many Requests"}',
    (("x-amzn-ErrorType", "TooManyRequestsException"),),
)


def access_denied(error_type: str, message: str) -> CannedResponse:
    """A 403 of IAM auth: `{"message": ...}` and the error type in `x-amzn-ErrorType`."""
    if error_type == "MissingAuthenticationTokenException":
        return MISSING_AUTHENTICATION_TOKEN
    body = json.dumps({"message": message}).encode()
    return CannedResponse(403, body, (("x-amzn-ErrorType", error_type),))


def runtime_api_error(status: int, error_type: str, message: str) -> CannedResponse:
    """An error answer of the Runtime API, shaped like the Lambda runtime interface emulator's."""
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    return CannedResponse(status, body)


def function_error_body(
    error_type: str, message: str, stack_trace: list[str] | None = None
) -> bytes:
    """The JSON error payload Lambda returns to an `Invoke` caller for an unhandled error."""
    document: dict[str, Any] = {"errorMessage": message, "errorType": error_type}
    if stack_trace is not None:
        document["stackTrace"] = stack_trace
    return json.dumps(document).encode()


def timeout_message(request_id: str, seconds: float) -> str:
    """Lambda's log line for a function that overran its timeout."""
    return f"{request_id} Task timed out after {seconds:.2f} seconds"


def decode_error_trailer(value: str) -> dict[str, Any]:
    """The `Lambda-Runtime-Function-Error-Body` trailer: base64 of a JSON error object.

    Anything unreadable still yields an error object, so an error is never lost.
    """
    try:
        document = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return {"errorType": "Runtime.Unknown", "errorMessage": f"unreadable error body {value!r}"}
    if not isinstance(document, dict):
        return {"errorType": "Runtime.Unknown", "errorMessage": repr(document)}
    return document


# Lambda's bandwidth shape


@dataclass(frozen=True)
class BandwidthShape:
    """Lambda's streaming bandwidth: the first `burst_bytes` at full speed, then a steady rate.

    The documentation says "the first 6 MB" and "2 MBps"; local mode reads both as MiB.
    """

    burst_bytes: int = 6 * 1024 * 1024
    bytes_per_second: float = 2 * 1024 * 1024


def pacing_delay(
    shape: BandwidthShape, sent: int, size: int, seconds_since_burst: float | None
) -> float:
    """Seconds to wait before sending `size` more bytes when `sent` bytes have already gone.

    `seconds_since_burst` is the time since the burst allowance ran out (None while it has not).
    Bytes past the burst may not finish sooner than `bytes_per_second` allows.
    """
    paced = sent + size - shape.burst_bytes
    if paced <= 0:
        return 0.0
    ready_at = paced / shape.bytes_per_second
    return max(0.0, ready_at - (seconds_since_burst or 0.0))


class Pacer:
    """Applies a `BandwidthShape` to one response; the clock and the sleep are injected."""

    def __init__(
        self,
        shape: BandwidthShape,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._shape = shape
        self._clock = clock
        self._sleep = sleep
        self._sent = 0
        self._burst_ended_at: float | None = None

    def before_send(self, size: int) -> None:
        """Wait, if needed, until `size` more bytes may go out."""
        if self._burst_ended_at is None and self._sent + size > self._shape.burst_bytes:
            self._burst_ended_at = self._clock()  # everything before went out at full speed
        since = None if self._burst_ended_at is None else self._clock() - self._burst_ended_at
        delay = pacing_delay(self._shape, self._sent, size, since)
        if delay > 0:
            self._sleep(delay)
        self._sent += size


# the access log


@dataclass
class RequestTimings:
    """Moments of one client request, in seconds of a monotonic clock (None: never happened)."""

    received: float
    integration_started: float | None = None
    all_headers: float | None = None
    first_content: float | None = None
    finished: float | None = None


def _milliseconds(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000, 1)


def access_log_record(
    *,
    request_id: str,
    source_ip: str,
    request_time: datetime,
    method: str,
    resource_path: str | None,
    path: str,
    protocol: str,
    status: int | None,
    response_length: int,
    timings: RequestTimings,
    transfer_mode: str | None,
    outcome: str = "",
) -> dict[str, Any]:
    """One access-log record, named after API Gateway's `$context` variables.

    Times are milliseconds (API Gateway logs whole ones; a decimal is kept because local times
    are small): `integration.timeToAllHeaders` and `integration.timeToFirstContent` count from the
    moment the request was handed to the function, `responseLatency` from its arrival.
    """
    record: dict[str, Any] = {
        "requestId": request_id,
        "ip": source_ip,
        "requestTime": format_request_time(request_time),
        "httpMethod": method,
        "resourcePath": resource_path,
        "path": path,
        "protocol": protocol,
        "status": status,
        "responseLength": response_length,
        "integration.timeToAllHeaders": _milliseconds(
            timings.integration_started, timings.all_headers
        ),
        "integration.timeToFirstContent": _milliseconds(
            timings.integration_started, timings.first_content
        ),
        "responseLatency": _milliseconds(timings.received, timings.finished),
        "integration.responseTransferMode": transfer_mode,
    }
    if outcome:
        record["outcome"] = outcome
    return record


def format_request_time(now: datetime) -> str:
    """`$context.requestTime`: CLF-formatted, as `30/Aug/2015:12:36:00 +0000`."""
    now = now.astimezone(UTC)
    return (
        f"{now.day:02d}/{_MONTHS[now.month - 1]}/{now.year}:"
        f"{now.hour:02d}:{now.minute:02d}:{now.second:02d} +0000"
    )
