"""Every rule of the writer API (ARCHITECTURE.md section 3), against an in-memory sink."""

import json

import pytest

from lambda_streaming import ResponseStreamWriter, StreamStateError
from lambda_streaming.protocol import PRELUDE_DELIMITER


class RecordingSink:
    """Keeps each chunk the writer sends, in order, and how often the body was finished."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.finished = 0
        self.calls = 0  # one call is one system call in the real sink

    def send(self, *chunks: bytes) -> None:
        assert chunks and all(len(chunk) > 0 for chunk in chunks), "an empty chunk ends the body"
        self.chunks.extend(bytes(chunk) for chunk in chunks)
        self.calls += 1

    def finish(self, *chunks: bytes) -> None:
        assert all(len(chunk) > 0 for chunk in chunks), "an empty chunk ends the body"
        self.chunks.extend(bytes(chunk) for chunk in chunks)
        self.finished += 1
        self.calls += 1

    @property
    def prelude(self) -> dict:
        json_part, delimiter, rest = self.chunks[0].partition(PRELUDE_DELIMITER)
        assert delimiter and rest == b""
        return json.loads(json_part)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks[1:])


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def writer(sink: RecordingSink) -> ResponseStreamWriter:
    return ResponseStreamWriter(sink)


def test_status_and_headers_go_first_as_the_prelude(writer, sink):
    writer.write_status_and_headers(404, {"Content-Type": "text/plain"})
    writer.write("not here")
    writer.finish()
    assert sink.prelude == {"statusCode": 404, "headers": {"Content-Type": "text/plain"}}
    assert sink.body == b"not here"


def test_each_write_is_sent_before_write_returns(writer, sink):
    writer.write_status_and_headers(200)
    writer.write(b"one")
    assert sink.chunks[-1] == b"one"
    writer.write(b"two")
    assert sink.chunks[-1] == b"two"


def test_status_and_headers_twice_is_refused(writer):
    writer.write_status_and_headers(200)
    with pytest.raises(StreamStateError):
        writer.write_status_and_headers(200)


def test_status_and_headers_after_the_body_is_refused(writer):
    writer.write("body first")
    with pytest.raises(StreamStateError):
        writer.write_status_and_headers(500)


def test_body_without_status_and_headers_gets_a_200_prelude(writer, sink):
    writer.write("hello")
    writer.finish()
    assert sink.prelude == {"statusCode": 200}
    assert sink.body == b"hello"


def test_finish_without_anything_written_still_sends_a_valid_prelude(writer, sink):
    writer.finish()
    assert sink.prelude == {"statusCode": 200}
    assert sink.body == b""
    assert sink.finished == 1


def test_finish_twice_raises(writer):
    writer.finish()
    with pytest.raises(StreamStateError):
        writer.finish()


def test_finish_after_write_and_finish_raises(writer, sink):
    writer.write_and_finish("last words")
    assert sink.body == b"last words"
    with pytest.raises(StreamStateError):
        writer.finish()


def test_write_after_finish_raises(writer):
    writer.finish()
    with pytest.raises(StreamStateError):
        writer.write("too late")


def test_status_and_headers_after_finish_raises(writer):
    writer.finish()
    with pytest.raises(StreamStateError):
        writer.write_status_and_headers(200)


def test_empty_write_sends_no_chunk(writer, sink):
    writer.write_status_and_headers(200)
    writer.write(b"")
    writer.write("")
    writer.write(bytearray())
    assert len(sink.chunks) == 1  # the prelude only


def test_empty_first_write_does_not_send_the_prelude_yet(writer, sink):
    writer.write("")
    assert sink.chunks == []
    writer.write_status_and_headers(201)
    assert sink.prelude == {"statusCode": 201}


def test_str_is_sent_as_utf8(writer, sink):
    writer.write("héllo ✓")
    assert sink.body == "héllo ✓".encode()


def test_binary_bytes_pass_through_untouched(writer, sink):
    payload = bytes(range(256)) * 4 + b"\x00" * 8 + b"\r\n0\r\n\r\n"
    writer.write_status_and_headers(200, {"Content-Type": "application/octet-stream"})
    writer.write(payload)
    writer.write(bytearray(b"\xff\xfe"))
    writer.write(memoryview(b"tail"))
    assert sink.body == payload + b"\xff\xfetail"


def test_other_types_are_refused_with_a_clear_error(writer):
    with pytest.raises(TypeError, match="bytes or str"):
        writer.write(42)


def test_multi_value_headers_and_cookies_reach_the_prelude(writer, sink):
    writer.write_status_and_headers(
        200,
        {"Content-Type": "text/plain"},
        multi_value_headers={"Cache-Control": ["no-cache", "no-store"]},
        cookies=["session=abc; HttpOnly", "theme=dark"],
    )
    assert sink.prelude == {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain"},
        "multiValueHeaders": {"Cache-Control": ["no-cache", "no-store"]},
        "cookies": ["session=abc; HttpOnly", "theme=dark"],
    }


def test_header_injection_is_refused_and_nothing_is_sent(writer, sink):
    with pytest.raises(ValueError):
        writer.write_status_and_headers(200, {"X-Evil": "a\r\nSet-Cookie: stolen=1"})
    assert sink.chunks == []
    writer.write_status_and_headers(200)  # the writer is still usable
    assert sink.prelude == {"statusCode": 200}


def test_a_utf8_character_split_across_writes_arrives_whole(writer, sink):
    encoded = "✓".encode()
    writer.write(encoded[:1])
    writer.write(encoded[1:])
    assert sink.body.decode() == "✓"


def test_write_and_finish_sends_the_last_chunk_and_the_end_together(writer, sink):
    writer.write_and_finish("all at once")
    assert (sink.calls, sink.finished) == (1, 1)
    assert sink.prelude == {"statusCode": 200}
    assert sink.body == b"all at once"


def test_write_and_finish_with_empty_data_only_finishes(writer, sink):
    writer.write_status_and_headers(204)
    writer.write_and_finish(b"")
    assert sink.finished == 1
    assert sink.body == b""
