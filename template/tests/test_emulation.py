"""Local mode's sans-I/O parts, tested with bytes: chunked decoding, the prelude, the REST event."""

import base64
import json
from datetime import UTC, datetime

import pytest

from lambda_streaming.emulation import (
    FUNCTION_ERROR,
    INVALID_PRELUDE,
    MAX_API_REQUEST_BYTES,
    MAX_PAYLOAD_BYTES,
    MISSING_AUTHENTICATION_TOKEN,
    PRELUDE_LIMIT,
    BandwidthShape,
    BodyEnd,
    BodyPiece,
    ChunkedDecoder,
    ChunkedEncodingError,
    HttpPrelude,
    Pacer,
    PreludeFound,
    PreludeInvalid,
    PreludeNeedMore,
    PreludeSplitter,
    RequestTimings,
    access_denied,
    access_log_record,
    build_rest_proxy_event,
    decode_error_trailer,
    encode_chunk,
    pacing_delay,
    timeout_message,
)

DELIMITER = b"\x00" * 8
CHUNKED = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"


def decode_in_pieces(data: bytes, size: int) -> tuple[bytes, BodyEnd | None]:
    decoder = ChunkedDecoder()
    body, end = b"", None
    for start in range(0, len(data), size):
        for event in decoder.feed(data[start : start + size]):
            if isinstance(event, BodyPiece):
                assert event.data, "an empty piece must never be reported"
                body += event.data
            else:
                end = event
    return body, end


# Chunked transfer coding


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_chunked_body_decodes_whatever_the_split(size):
    body, end = decode_in_pieces(CHUNKED, size)
    assert body == b"hello, world"
    assert end == BodyEnd(())


def test_chunk_data_is_reported_before_the_chunk_is_complete():
    decoder = ChunkedDecoder()
    assert decoder.feed(b"a\r\nhel") == [BodyPiece(b"hel")]
    assert decoder.feed(b"lo") == [BodyPiece(b"lo")]


def test_error_trailers_are_parsed_after_the_zero_chunk():
    payload = base64.b64encode(json.dumps({"errorType": "ValueError"}).encode()).decode()
    data = (
        b"3\r\nabc\r\n0\r\n"
        b"Lambda-Runtime-Function-Error-Type: Function.ValueError\r\n"
        b"Lambda-Runtime-Function-Error-Body: " + payload.encode() + b"\r\n\r\n"
    )
    body, end = decode_in_pieces(data, 5)
    assert body == b"abc"
    assert end is not None
    assert end.trailer("lambda-runtime-function-error-type") == "Function.ValueError"
    assert decode_error_trailer(end.trailer("Lambda-Runtime-Function-Error-Body") or "") == {
        "errorType": "ValueError"
    }


def test_bytes_after_the_end_are_kept_unused():
    decoder = ChunkedDecoder()
    decoder.feed(b"0\r\n\r\nGET /")
    assert decoder.done
    assert decoder.unused == b"GET /"


@pytest.mark.parametrize(
    "data",
    [
        b"zz\r\n",  # not hex
        b"3\r\nabcdef\r\n",  # longer than announced
        b"3\r\nabc\r\n0\r\nno colon here\r\n\r\n",  # malformed trailer
        b"1" * 10000,  # a size line that never ends
    ],
)
def test_malformed_chunked_body_raises(data):
    with pytest.raises(ChunkedEncodingError):
        ChunkedDecoder().feed(data)


def test_empty_data_encodes_no_chunk_because_a_zero_chunk_ends_the_body():
    assert encode_chunk(b"") == b""
    assert encode_chunk(b"abc") == b"3\r\nabc\r\n"


# The HTTP integration prelude


def test_prelude_split_across_feeds_is_found_with_the_remaining_bytes():
    splitter = PreludeSplitter()
    assert splitter.feed(b'{"statusCode": 201, "headers": {"a"') == PreludeNeedMore()
    assert splitter.feed(b': "b"}}\x00\x00\x00') == PreludeNeedMore()
    result = splitter.feed(b"\x00\x00\x00\x00\x00body")
    assert result == PreludeFound(HttpPrelude(201, {"a": "b"}), b"body")


def test_missing_status_code_defaults_to_200():
    result = PreludeSplitter().feed(b"{}" + DELIMITER)
    assert isinstance(result, PreludeFound)
    assert result.prelude.status_code == 200


def test_multi_value_headers_win_a_clash_and_each_cookie_is_its_own_header():
    prelude = HttpPrelude(
        200,
        headers={"X-One": "single", "x-two": "kept"},
        multi_value_headers={"x-one": ["a", "b"]},
        cookies=["a=1", "b=2"],
    )
    assert prelude.header_pairs() == [
        ("x-two", "kept"),
        ("x-one", "a"),
        ("x-one", "b"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]


def test_prelude_whose_delimiter_ends_past_16_kb_is_invalid():
    big = b'{"headers": {"x": "' + b"y" * PRELUDE_LIMIT + b'"}}'
    splitter = PreludeSplitter()
    results = [splitter.feed(big[i : i + 4096]) for i in range(0, len(big), 4096)]
    assert isinstance(results[-1], PreludeInvalid)
    assert "16384" in results[-1].reason


def test_prelude_that_just_fits_16_kb_is_found():
    padding = PRELUDE_LIMIT - len(b'{"x": ""}') - len(DELIMITER)
    data = b'{"x": "' + b"y" * padding + b'"}' + DELIMITER
    assert len(data) == PRELUDE_LIMIT
    assert isinstance(PreludeSplitter().feed(data), PreludeFound)


@pytest.mark.parametrize(
    "data",
    [
        b"not json" + DELIMITER,
        b"[1, 2]" + DELIMITER,
        b'{"statusCode": "200"}' + DELIMITER,
        b'{"statusCode": 99}' + DELIMITER,
        b'{"headers": {"a": 1}}' + DELIMITER,
        b'{"multiValueHeaders": {"a": "not a list"}}' + DELIMITER,
        b'{"cookies": "a=1"}' + DELIMITER,
        b'{"headers": {"x": "a\\r\\nInjected: yes"}}' + DELIMITER,
        b'{"headers": {"bad name": "v"}}' + DELIMITER,
        b"{}\x00\x00\x00x",  # fewer than 8 NUL bytes
        b'{"a": "\xff"}' + DELIMITER,  # not UTF-8
    ],
)
def test_invalid_prelude_is_reported_invalid(data):
    assert isinstance(PreludeSplitter().feed(data), PreludeInvalid)


def test_stream_ending_before_the_delimiter_is_invalid():
    splitter = PreludeSplitter()
    assert splitter.feed(b'{"statusCode": 200}') == PreludeNeedMore()
    assert isinstance(splitter.finish(), PreludeInvalid)


# The REST proxy event (payload format 1.0)

NOW = datetime(2025, 11, 19, 8, 5, 3, 250000, tzinfo=UTC)


def build(**overrides):
    arguments = {
        "method": "GET",
        "path": "/stream",
        "query": "",
        "headers": [("Host", "localhost:7000"), ("User-Agent", "curl/8.5.0")],
        "body": b"",
    } | overrides
    return build_rest_proxy_event(
        **arguments,
        stage="prod",
        resource_path="/stream",
        source_ip="127.0.0.1",
        request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        now=NOW,
    )


def test_event_has_every_format_1_0_field_and_no_2_0_field():
    event = build()
    assert set(event) == {
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
        "body",
        "isBase64Encoded",
    }
    assert {"version", "routeKey", "rawPath"}.isdisjoint(event)
    context = event["requestContext"]
    for name in (
        "accountId",
        "resourceId",
        "stage",
        "requestId",
        "identity",
        "resourcePath",
        "path",
        "httpMethod",
        "requestTime",
        "requestTimeEpoch",
        "apiId",
        "domainName",
        "protocol",
    ):
        assert name in context


def test_event_request_context_describes_the_request():
    context = build(method="post")["requestContext"]
    assert context["stage"] == "prod"
    assert context["path"] == "/prod/stream"
    assert context["resourcePath"] == "/stream"
    assert context["httpMethod"] == "POST"
    assert context["requestId"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "curl/8.5.0"
    assert context["requestTime"] == "19/Nov/2025:08:05:03 +0000"
    assert context["requestTimeEpoch"] == 1763539503250
    assert context["domainName"] == "localhost"


def test_empty_parts_are_null_as_api_gateway_sends_them():
    event = build(headers=[])
    for name in (
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ):
        assert event[name] is None, name
    assert event["isBase64Encoded"] is False


def test_repeated_query_parameters_keep_the_last_single_value_and_all_multi_values():
    event = build(query="a=1&a=2&b=x%20y&empty=")
    assert event["queryStringParameters"] == {"a": "2", "b": "x y", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {
        "a": ["1", "2"],
        "b": ["x y"],
        "empty": [""],
    }


def test_repeated_headers_keep_the_last_single_value_and_all_multi_values():
    event = build(headers=[("Accept", "text/plain"), ("Accept", "application/json")])
    assert event["headers"] == {"Accept": "application/json"}
    assert event["multiValueHeaders"] == {"Accept": ["text/plain", "application/json"]}


def test_utf8_body_is_text():
    event = build(method="POST", body="héllo".encode())
    assert event["body"] == "héllo"
    assert event["isBase64Encoded"] is False


def test_non_utf8_body_is_base64_encoded():
    event = build(method="POST", body=b"\xff\xfe\x00")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe\x00"


def test_event_is_json_serialisable():
    assert json.loads(json.dumps(build())) == build()


# Error bodies and messages


def test_api_gateway_error_bodies():
    assert MISSING_AUTHENTICATION_TOKEN.status == 403
    assert json.loads(MISSING_AUTHENTICATION_TOKEN.body) == {
        "message": "Missing Authentication Token"
    }
    assert (FUNCTION_ERROR.status, INVALID_PRELUDE.status) == (502, 500)
    for response in (FUNCTION_ERROR, INVALID_PRELUDE):
        assert json.loads(response.body) == {"message": "Internal server error"}


def test_timeout_message_uses_lambdas_wording():
    assert timeout_message("abc", 3) == "abc Task timed out after 3.00 seconds"


def test_unreadable_error_trailer_still_yields_an_error():
    assert decode_error_trailer("%%%")["errorType"] == "Runtime.Unknown"


# Lambda's bandwidth shape, without sleeping

SHAPE = BandwidthShape(burst_bytes=6 * 1024 * 1024, bytes_per_second=2 * 1024 * 1024)
MIB = 1024 * 1024


def test_the_first_6_mb_go_at_full_speed():
    assert pacing_delay(SHAPE, 0, 6 * MIB, None) == 0.0


def test_bytes_past_the_burst_go_at_2_mb_per_second():
    assert pacing_delay(SHAPE, 6 * MIB, 2 * MIB, 0.0) == pytest.approx(1.0)
    assert pacing_delay(SHAPE, 5 * MIB, 2 * MIB, 0.0) == pytest.approx(0.5)  # 1 MiB is free
    assert pacing_delay(SHAPE, 8 * MIB, 2 * MIB, 1.0) == pytest.approx(1.0)
    assert pacing_delay(SHAPE, 8 * MIB, 2 * MIB, 5.0) == 0.0  # a slow function owes nothing


def test_pacer_spreads_a_large_response_over_the_expected_time():
    clock = [0.0]
    pacer = Pacer(SHAPE, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    for _ in range(16):
        pacer.before_send(MIB)  # 16 MiB in 1 MiB writes
    assert clock[0] == pytest.approx(5.0)  # 6 MiB free, then 10 MiB at 2 MiB/s


# The access log and the request limit


def test_api_gateway_request_limit_is_10_mib_and_lambdas_6_mib():
    assert MAX_API_REQUEST_BYTES == 10 * MIB
    assert MAX_PAYLOAD_BYTES == 6 * MIB


def test_access_log_record_uses_api_gateway_variable_names_and_milliseconds():
    timings = RequestTimings(10.0, 10.001, 10.003, 10.004, 10.5)
    record = access_log_record(
        request_id="id",
        source_ip="127.0.0.1",
        request_time=datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
        method="GET",
        resource_path="/stream",
        path="/prod/stream",
        protocol="HTTP/1.1",
        status=200,
        response_length=42,
        timings=timings,
        transfer_mode="STREAM",
    )
    assert record["requestTime"] == "30/Aug/2015:12:36:00 +0000"
    assert record["integration.timeToAllHeaders"] == 2.0
    assert record["integration.timeToFirstContent"] == 3.0
    assert record["responseLatency"] == 500.0
    assert record["integration.responseTransferMode"] == "STREAM"
    assert json.loads(json.dumps(record)) == record


def test_access_denied_keeps_api_gateways_message_and_error_type():
    denied = access_denied("InvalidSignatureException", "bad")
    assert (denied.status, json.loads(denied.body)) == (403, {"message": "bad"})
    assert dict(denied.headers)["x-amzn-ErrorType"] == "InvalidSignatureException"
    missing = access_denied("MissingAuthenticationTokenException", "Missing Authentication Token")
    assert missing == MISSING_AUTHENTICATION_TOKEN


def test_event_names_the_access_key_of_a_signed_request():
    event = build_rest_proxy_event(
        "GET", "/stream", "", [], b"", stage="prod", resource_path="/stream",
        source_ip="1.2.3.4", request_id="r", now=datetime.now(UTC), access_key="AKID",
    )  # fmt: skip
    assert event["requestContext"]["identity"]["accessKey"] == "AKID"
