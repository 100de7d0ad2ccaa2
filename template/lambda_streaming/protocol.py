"""The bytes a streaming Lambda runtime puts on the wire. Sans-I/O: no sockets here.

Facts (shared/design/STREAMING-PROTOCOL.md):
- the streamed ``/response`` is HTTP/1.1 chunked, framed by hand so that error trailers can follow
  the zero-length chunk (section 1.1, points 3 and 5);
- an API Gateway response starts with the HTTP integration prelude: JSON, then eight NUL bytes
  (section 2).
"""

from __future__ import annotations

try:  # json.dumps's own string encoder (C), without importing json, which imports re, at start
    from _json import encode_basestring_ascii as _json_string
except ImportError:  # an interpreter without the accelerator
    from json.encoder import encode_basestring_ascii as _json_string

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

RUNTIME_API_VERSION = "2018-06-01"
PRELUDE_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_DELIMITER = b"\x00" * 8
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
CRLF = b"\r\n"
LAST_CHUNK = b"0\r\n"

_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\x00")


def chunk_size_line(size: int) -> bytes:
    """The line that opens a chunk of ``size`` bytes (hexadecimal, RFC 9112 section 7.1)."""
    return b"%x\r\n" % size


def frame_chunk(data: bytes) -> bytes:
    """One whole chunk. Never call it with empty data: a zero-length chunk ends the body."""
    if not data:
        raise ValueError("an empty chunk would end the chunked body")
    return chunk_size_line(len(data)) + data + CRLF


def end_of_body(trailers: Mapping[str, str] | None = None) -> bytes:
    """The zero-length chunk, the trailer fields if any, and the blank line that ends the body."""
    fields = b"".join(
        f"{name}: {value}\r\n".encode("latin-1") for name, value in (trailers or {}).items()
    )
    return LAST_CHUNK + fields + CRLF


def check_header_field(name: str, value: str) -> None:
    """Refuse what would let a value inject headers or break the prelude (section 2)."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError(f"header names and values must be str, got {name!r}: {value!r}")
    if not name:
        raise ValueError("a header name must not be empty")
    for text in (name, value):
        if any(forbidden in text for forbidden in _FORBIDDEN_IN_HEADERS):
            raise ValueError(f"CR, LF and NUL are not allowed in a header: {name!r}: {value!r}")


def encode_prelude(
    status_code: int,
    headers: Mapping[str, str] | None = None,
    *,
    multi_value_headers: Mapping[str, Iterable[str]] | None = None,
    cookies: Iterable[str] | None = None,
) -> bytes:
    """The HTTP integration prelude: the JSON that API Gateway turns into status and headers."""
    if isinstance(status_code, bool) or not isinstance(status_code, int):
        raise TypeError(f"status_code must be an int, got {status_code!r}")
    if not 100 <= status_code <= 599:
        raise ValueError(f"status_code must be between 100 and 599, got {status_code}")
    # The JSON is written here rather than by json.dumps, with json.dumps's own string encoder, so
    # the bytes are those of json.dumps(prelude, separators=(",", ":")); it escapes control
    # characters, so the JSON never holds the NUL delimiter itself.
    fields = [f'{{"statusCode":{int.__repr__(status_code)}']
    if headers:
        for name, value in headers.items():
            check_header_field(name, value)
        members = ",".join(
            f"{_json_string(name)}:{_json_string(value)}" for name, value in headers.items()
        )
        fields.append(f',"headers":{{{members}}}')
    if multi_value_headers:
        multi = {name: list(values) for name, values in multi_value_headers.items()}
        for name, values in multi.items():
            for value in values:
                check_header_field(name, value)
        members = ",".join(
            f"{_json_string(name)}:[{','.join(map(_json_string, values))}]"
            for name, values in multi.items()
        )
        fields.append(f',"multiValueHeaders":{{{members}}}')
    if cookies:
        cookie_list = list(cookies)
        for cookie in cookie_list:
            check_header_field("Set-Cookie", cookie)
        fields.append(f',"cookies":[{",".join(map(_json_string, cookie_list))}]')
    fields.append("}")
    return "".join(fields).encode() + PRELUDE_DELIMITER


DEFAULT_PRELUDE = encode_prelude(200)


def error_payload(
    error_type: str, message: str, stack_trace: Iterable[str] = ()
) -> dict[str, object]:
    """The JSON body Lambda expects on /error, /init/error and in the error trailer."""
    return {"errorMessage": message, "errorType": error_type, "stackTrace": list(stack_trace)}


def error_trailers(header_error_type: str, payload: Mapping[str, object]) -> dict[str, str]:
    """Trailer fields that report an error after the body started (section 1.1, point 3)."""
    import base64  # only failures pay for them
    import json

    body = base64.b64encode(json.dumps(payload).encode()).decode("ascii")
    return {ERROR_TYPE_HEADER: header_error_type, ERROR_BODY_TRAILER: body}


def function_error_type(exception_name: str) -> str:
    """Lambda keeps ``Function.X`` error types; anything it cannot read becomes Runtime.Unknown."""
    if exception_name.isascii() and exception_name.replace("_", "").isalnum():
        return f"Function.{exception_name}"
    return "Function.Unhandled"


def request_head(
    method: str, path: str, host: str, headers: Mapping[str, str] | None = None
) -> bytes:
    """An HTTP/1.1 request line and headers, ready to send."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
