"""The wire format, byte for byte (STREAMING-PROTOCOL.md sections 1.1 and 2)."""

import base64
import json

import pytest

from lambda_streaming.protocol import (
    PRELUDE_DELIMITER,
    encode_prelude,
    end_of_body,
    error_payload,
    error_trailers,
    frame_chunk,
    function_error_type,
)


def split_prelude(data: bytes) -> dict:
    json_part, delimiter, rest = data.partition(PRELUDE_DELIMITER)
    assert delimiter and rest == b""
    return json.loads(json_part)


def test_chunk_is_hex_size_crlf_data_crlf():
    assert frame_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"


def test_empty_chunk_is_refused_because_it_would_end_the_body():
    with pytest.raises(ValueError):
        frame_chunk(b"")


def test_end_of_body_without_trailers_is_the_zero_chunk_and_a_blank_line():
    assert end_of_body() == b"0\r\n\r\n"


def test_end_of_body_carries_trailer_fields_after_the_zero_chunk():
    assert end_of_body({"A": "1", "B": "2"}) == b"0\r\nA: 1\r\nB: 2\r\n\r\n"


def test_prelude_is_json_then_eight_nul_bytes():
    prelude = encode_prelude(201, {"Content-Type": "text/plain"})
    assert prelude.endswith(b"\x00" * 8)
    assert split_prelude(prelude) == {"statusCode": 201, "headers": {"Content-Type": "text/plain"}}


def test_prelude_carries_multi_value_headers_and_cookies():
    prelude = encode_prelude(
        200, multi_value_headers={"X-Tag": ("a", "b")}, cookies=["a=1; Path=/", "b=2"]
    )
    assert split_prelude(prelude) == {
        "statusCode": 200,
        "multiValueHeaders": {"X-Tag": ["a", "b"]},
        "cookies": ["a=1; Path=/", "b=2"],
    }


def test_prelude_bytes_are_those_of_compact_json_dumps():
    headers = {"Content-Type": "text/plain", 'quo"te': "tab\t back\\slash", "é": "\U0001f600"}
    multi = {"X-Tag": ["a", "ü"], "X-None": []}
    cookies = ["a=1; Path=/"]
    expected = {"statusCode": 404, "headers": headers, "multiValueHeaders": multi}
    expected["cookies"] = cookies
    prelude = encode_prelude(404, headers, multi_value_headers=multi, cookies=cookies)
    assert prelude == json.dumps(expected, separators=(",", ":")).encode() + b"\x00" * 8


def test_prelude_json_never_contains_a_nul_byte():
    prelude = encode_prelude(200, {"X-Odd": "\u0001 tab\t"})
    assert b"\x00" not in prelude[: -len(PRELUDE_DELIMITER)]


@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: evil=1", "a\nb", "a\rb", "a\x00b"])
def test_header_injection_is_refused_in_values(value):
    with pytest.raises(ValueError, match="CR, LF and NUL"):
        encode_prelude(200, {"X-Ok": value})


@pytest.mark.parametrize("name", ["X-Bad\r\n", "X\nY", "X\x00"])
def test_header_injection_is_refused_in_names(name):
    with pytest.raises(ValueError):
        encode_prelude(200, {name: "v"})


def test_header_injection_is_refused_in_multi_value_headers_and_cookies():
    with pytest.raises(ValueError):
        encode_prelude(200, multi_value_headers={"X": ["ok", "bad\r\n"]})
    with pytest.raises(ValueError):
        encode_prelude(200, cookies=["a=1\r\nX-Evil: 1"])


@pytest.mark.parametrize("status", [99, 600, -1])
def test_status_code_out_of_range_is_refused(status):
    with pytest.raises(ValueError):
        encode_prelude(status)


@pytest.mark.parametrize("status", ["200", 200.0, True])
def test_status_code_must_be_an_int(status):
    with pytest.raises(TypeError):
        encode_prelude(status)


def test_error_trailers_hold_base64_json_of_type_message_and_stack():
    payload = error_payload("ValueError", "bad value", ["  File x, line 1\n"])
    trailers = error_trailers("Function.ValueError", payload)
    assert trailers["Lambda-Runtime-Function-Error-Type"] == "Function.ValueError"
    body = base64.b64decode(trailers["Lambda-Runtime-Function-Error-Body"], validate=True)
    assert json.loads(body) == {
        "errorMessage": "bad value",
        "errorType": "ValueError",
        "stackTrace": ["  File x, line 1\n"],
    }


def test_function_error_type_keeps_the_function_prefix_lambda_understands():
    assert function_error_type("KeyError") == "Function.KeyError"
    assert function_error_type("Ärger") == "Function.Unhandled"
