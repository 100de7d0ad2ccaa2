"""LocalServer over real sockets: the Runtime API, POST /invoke and the API Gateway view.

The first tests play the runtime by hand with raw sockets, which pins the protocol byte by byte;
the last ones run the real runtime loop (`lambda_streaming.runtime.serve`) against the server.
"""

import base64
import contextlib
import gzip
import http.client
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from lambda_streaming.emulation import MAX_API_REQUEST_BYTES
from lambda_streaming.local_server import ExecutionEnvironments, LocalServer
from lambda_streaming.runtime import serve
from lambda_streaming.sigv4 import Credentials, SignedRequest, sign_request

DELIMITER = b"\x00" * 8
PRELUDE_TYPE = "application/vnd.awslambda.http-integration-response"
CUT = (http.client.IncompleteRead, ConnectionError)  # what a client sees of a stream cut short


@contextmanager
def running_server(**options: object) -> Iterator[LocalServer]:
    server = LocalServer(port=0, **options)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with running_server(timeout_seconds=10) as server:
        yield server


def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition never became true")


def queued(server: LocalServer, count: int) -> None:
    """Wait until `count` client requests wait in the queue (orders the tests' requests)."""
    wait_until(lambda: len(server._pending) == count)


# The client's side


def send_request(
    server: LocalServer, method: str, path: str, body: bytes = b"", headers: tuple = ()
) -> socket.socket:
    connection = socket.create_connection((server.host, server.port), timeout=5)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {server.host}:{server.port}"]
    lines += [f"Content-Length: {len(body)}", *(f"{name}: {value}" for name, value in headers)]
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return connection


def response_of(connection: socket.socket, method: str = "POST") -> http.client.HTTPResponse:
    response = http.client.HTTPResponse(connection, method=method)
    response.begin()
    return response


# The runtime's side, played by hand


def next_invocation(server: LocalServer) -> tuple[http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    connection.request("GET", "/2018-06-01/runtime/invocation/next")
    response = connection.getresponse()
    return response, response.read()


def next_request_id(server: LocalServer) -> str:
    response, _ = next_invocation(server)
    return response.headers["Lambda-Runtime-Aws-Request-Id"]


def post(server: LocalServer, path: str, body: bytes = b"", headers: dict | None = None):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    connection.request("POST", path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.headers, response.read()


def open_stream(
    server: LocalServer, request_id: str, content_type: str = PRELUDE_TYPE, mode: str = "streaming"
) -> socket.socket:
    connection = socket.create_connection((server.host, server.port), timeout=5)
    connection.sendall(
        (
            f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
            f"Host: {server.runtime_api}\r\n"
            f"Lambda-Runtime-Function-Response-Mode: {mode}\r\n"
            "Transfer-Encoding: chunked\r\n"
            f"Content-Type: {content_type}\r\n"
            "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
            "\r\n"
        ).encode()
    )
    return connection


def send_chunk(stream: socket.socket, data: bytes) -> None:
    stream.sendall(b"%x\r\n%b\r\n" % (len(data), data))


def end_stream(stream: socket.socket, error: dict | None = None) -> tuple[int, dict]:
    trailers = b""
    if error is not None:
        encoded = base64.b64encode(json.dumps(error).encode())
        trailers = (
            b"Lambda-Runtime-Function-Error-Type: Function." + error["errorType"].encode() + b"\r\n"
            b"Lambda-Runtime-Function-Error-Body: " + encoded + b"\r\n"
        )
    stream.sendall(b"0\r\n" + trailers + b"\r\n")
    response = response_of(stream)
    return response.status, json.loads(response.read())


def respond_buffered(server: LocalServer, request_id: str, body: bytes, content_type: str) -> int:
    status, _, _ = post(
        server,
        f"/2018-06-01/runtime/invocation/{request_id}/response",
        body,
        {"Content-Type": content_type},
    )
    return status


def prelude(document: dict) -> bytes:
    return json.dumps(document).encode() + DELIMITER


ERROR = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": ['  File "h.py"']}


# The Runtime API


def test_runtime_api_names_the_bound_ephemeral_port(server):
    assert server.port != 0
    assert server.runtime_api == f"127.0.0.1:{server.port}"


def test_next_carries_the_event_and_lambdas_headers(server):
    send_request(server, "POST", "/invoke", b'{"hello": "world"}')
    before = time.time()
    response, event = next_invocation(server)
    assert response.status == 200
    assert event == b'{"hello": "world"}'
    headers = response.headers
    assert uuid.UUID(headers["Lambda-Runtime-Aws-Request-Id"]).version == 4
    deadline = int(headers["Lambda-Runtime-Deadline-Ms"]) / 1000
    assert before + 9 < deadline < time.time() + 11
    arn = headers["Lambda-Runtime-Invoked-Function-Arn"]
    assert arn == "arn:aws:lambda:us-east-1:123456789012:function:function"
    trace = headers["Lambda-Runtime-Trace-Id"]
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", trace)
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(event)


def test_invoke_payload_that_is_not_json_is_400_invalid_request_content(server):
    for payload in (b"{not json", b"this is not used", b"\xff"):
        response = response_of(send_request(server, "POST", "/invoke", payload))
        assert response.status == 400
        assert response.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
        error = json.loads(response.read())
        assert error["Type"] == "User"
        assert error["message"].startswith("Could not parse request body into json: ")
    assert not server._pending  # nothing was invoked


def test_duplicate_content_length_headers_are_400_before_anything_is_invoked(server):
    for path in ("/invoke", "/prod/stream"):
        connection = socket.create_connection((server.host, server.port), timeout=5)
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n"
            "\r\n12345".encode()
        )
        response = response_of(connection)
        assert response.status == 400
        assert json.loads(response.read()) == {"message": "more than one Content-Length header"}
    assert not server._pending  # nothing was invoked


def test_invoke_payload_is_passed_to_the_function_byte_for_byte(server):
    for payload in (b'"this is not used"', b' {"a" : 1} ', b""):
        send_request(server, "POST", "/invoke", payload)
        response, event = next_invocation(server)
        assert event == payload
        respond_buffered(server, response.headers["Lambda-Runtime-Aws-Request-Id"], b"", "a/b")


def test_response_mode_other_than_streaming_is_400(server):
    client = send_request(server, "POST", "/invoke", b"{}")
    request_id = next_request_id(server)
    stream = open_stream(server, request_id, mode="buffered")
    response = response_of(stream)
    assert response.status == 400
    assert "Lambda-Runtime-Function-Response-Mode" in json.loads(response.read())["errorMessage"]
    # The invocation is still open: the runtime can still answer it.
    assert respond_buffered(server, request_id, b"ok", "text/plain") == 202
    assert response_of(client).read() == b"ok"


def test_unknown_request_id_is_400_with_a_json_error(server):
    status, _, body = post(server, "/2018-06-01/runtime/invocation/nope/response", b"x")
    assert status == 400
    assert "unknown request id" in json.loads(body)["errorMessage"]


def test_answering_twice_is_400(server):
    send_request(server, "POST", "/invoke", b"{}")
    request_id = next_request_id(server)
    assert respond_buffered(server, request_id, b"one", "text/plain") == 202
    status, _, body = post(server, f"/2018-06-01/runtime/invocation/{request_id}/response", b"2")
    assert status == 400
    assert "already been answered" in json.loads(body)["errorMessage"]


def test_error_after_the_response_started_is_400(server):
    send_request(server, "POST", "/invoke", b"{}")
    request_id = next_request_id(server)
    stream = open_stream(server, request_id)
    send_chunk(stream, b"started")
    wait_until(lambda: server._handed_out[request_id].answer_started)  # the server has read it
    status, _, body = post(
        server, f"/2018-06-01/runtime/invocation/{request_id}/error", json.dumps(ERROR).encode()
    )
    assert status == 400
    assert "trailers" in json.loads(body)["errorMessage"]
    assert end_stream(stream)[0] == 202


def test_malformed_chunked_response_is_400_and_cuts_the_client(server):
    client = send_request(server, "POST", "/invoke", b"{}")
    request_id = next_request_id(server)
    stream = open_stream(server, request_id)
    stream.sendall(b"zz\r\n")
    response = response_of(stream)
    assert response.status == 400
    assert "chunk" in json.loads(response.read())["errorMessage"]
    with pytest.raises(CUT):
        response_of(client).read()


def test_unknown_runtime_api_route_is_404_and_wrong_method_is_405(server):
    status, _, body = post(server, "/2018-06-01/runtime/nothing-here")
    assert status == 404
    assert json.loads(body)["errorType"] == "NotFound"
    status, _, _ = post(server, "/2018-06-01/runtime/invocation/next")
    assert status == 405


def test_shutdown_releases_a_waiting_next_call():
    with running_server() as server:
        waiting = socket.create_connection((server.host, server.port), timeout=5)
        waiting.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: len(server._httpd._connections) == 1)
        server.shutdown()
        with contextlib.suppress(ConnectionError):  # a reset is as good as a close here
            assert waiting.recv(100) == b""
    # The listening socket is closed (connecting could reach another process that took the port).
    assert server._httpd.socket.fileno() == -1


# POST /invoke


def test_invoke_streams_the_function_bytes_verbatim_with_the_prelude(server):
    client = send_request(server, "POST", "/invoke", b'"this is not used"')
    request_id = next_request_id(server)
    stream = open_stream(server, request_id)
    body = prelude({"statusCode": 418, "headers": {"x": "y"}}) + b"Number: 1\n"
    send_chunk(stream, body)
    assert end_stream(stream) == (202, {"status": "OK"})
    response = response_of(client)
    assert response.status == 200  # the prelude's status is not applied
    assert response.headers["Content-Type"] == PRELUDE_TYPE
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.headers["x-amzn-RequestId"] == request_id
    assert response.read() == body


def test_each_chunk_reaches_the_client_before_the_next_is_sent(server):
    client = send_request(server, "POST", "/invoke", b"{}")
    request_id = next_request_id(server)
    stream = open_stream(server, request_id, content_type="text/plain")
    send_chunk(stream, b"first")
    response = response_of(client)
    assert response.headers["Content-Type"] == "text/plain"
    assert response.read1(100) == b"first"  # while the runtime's stream is still open
    send_chunk(stream, b"second")
    assert response.read1(100) == b"second"
    assert end_stream(stream)[0] == 202
    assert response.read() == b""


def test_buffered_response_is_relayed_with_its_content_type(server):
    client = send_request(server, "POST", "/invoke", b"{}")
    request_id = next_request_id(server)
    assert respond_buffered(server, request_id, b'{"ok": true}', "application/json") == 202
    response = response_of(client)
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.read()) == {"ok": True}


def test_error_before_the_body_is_an_unhandled_function_error(server, caplog):
    client = send_request(server, "POST", "/invoke", b"{}")
    request_id = next_request_id(server)
    status, _, _ = post(
        server,
        f"/2018-06-01/runtime/invocation/{request_id}/error",
        json.dumps(ERROR).encode(),
        {"Lambda-Runtime-Function-Error-Type": "Function.ValueError"},
    )
    assert status == 202
    response = response_of(client)
    assert response.status == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert json.loads(response.read()) == ERROR
    assert "Function.ValueError" in caplog.text and "boom" in caplog.text


def test_error_trailers_cut_the_invoke_stream(server, caplog):
    client = send_request(server, "POST", "/invoke", b"{}")
    request_id = next_request_id(server)
    stream = open_stream(server, request_id)
    send_chunk(stream, b"partial")
    response = response_of(client)
    assert response.read1(100) == b"partial"
    assert end_stream(stream, ERROR)[0] == 202
    with pytest.raises(CUT):
        response.read()
    assert "boom" in caplog.text


def test_init_error_fails_the_waiting_invocation(server):
    client = send_request(server, "POST", "/invoke", b"{}")
    queued(server, 1)
    error = {"errorMessage": "No module named 'x'", "errorType": "Runtime.ImportModuleError"}
    status, _, _ = post(
        server,
        "/2018-06-01/runtime/init/error",
        json.dumps(error).encode(),
        {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
    )
    assert status == 202
    response = response_of(client)
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert json.loads(response.read()) == error


def test_invocations_are_served_first_in_first_out(server):
    clients = []
    for index in range(3):
        clients.append(send_request(server, "POST", "/invoke", str(index).encode()))
        queued(server, index + 1)
    for index in range(3):
        response, event = next_invocation(server)
        assert event == str(index).encode()
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        respond_buffered(server, request_id, b"answer %d" % index, "text/plain")
    assert [response_of(client).read() for client in clients] == [
        b"answer 0",
        b"answer 1",
        b"answer 2",
    ]


def test_client_disconnect_does_not_block_next_request(server, caplog):
    client = send_request(server, "POST", "/invoke", b"{}")
    request_id = next_request_id(server)
    stream = open_stream(server, request_id)
    send_chunk(stream, b"first")
    response = response_of(client)
    assert response.read1(100) == b"first"
    response.close()  # the response holds the socket open too
    client.close()
    for _ in range(40):  # enough bytes that writing to the departed client fails
        send_chunk(stream, b"x" * 65536)
    assert end_stream(stream)[0] == 202
    wait_until(lambda: "client disconnected" in caplog.text)

    second = send_request(server, "POST", "/invoke", b"{}")
    assert respond_buffered(server, next_request_id(server), b"fine", "text/plain") == 202
    assert response_of(second).read() == b"fine"


def test_client_leaving_before_its_turn_is_dropped_from_the_queue(server):
    gone = send_request(server, "POST", "/invoke", b'"gone"')
    queued(server, 1)
    gone.close()  # nothing else holds this socket
    queued(server, 0)
    send_request(server, "POST", "/invoke", b'"stays"')
    _, event = next_invocation(server)
    assert event == b'"stays"'


def test_function_timeout_cuts_the_stream_and_discards_the_late_response(caplog):
    with running_server(timeout_seconds=0.3) as server:
        client = send_request(server, "POST", "/invoke", b"{}")
        request_id = next_request_id(server)
        stream = open_stream(server, request_id)
        send_chunk(stream, b"partial")
        response = response_of(client)
        assert response.read1(100) == b"partial"
        with pytest.raises(CUT):
            response.read()  # returns once the timeout cuts the stream
        assert f"{request_id} Task timed out after 0.30 seconds" in caplog.text
        send_chunk(stream, b"late")
        assert end_stream(stream)[0] == 202  # discarded, and the runtime may go on

        second = send_request(server, "POST", "/invoke", b"{}")
        assert respond_buffered(server, next_request_id(server), b"next", "text/plain") == 202
        assert response_of(second).read() == b"next"


def test_timeout_before_any_byte_answers_like_lambda():
    with running_server(timeout_seconds=0.2) as server:
        client = send_request(server, "POST", "/invoke", b"{}")
        request_id = next_request_id(server)
        response = response_of(client)
        assert response.headers["X-Amz-Function-Error"] == "Unhandled"
        error = json.loads(response.read())
        assert error["errorType"] == "Sandbox.Timedout"
        assert "Task timed out after 0.20 seconds" in error["errorMessage"]
        assert respond_buffered(server, request_id, b"too late", "text/plain") == 202


def test_one_access_log_record_per_client_request():
    records: list[dict] = []
    with running_server(access_log=records.append) as server:
        client = send_request(server, "POST", "/invoke", b"{}")
        request_id = next_request_id(server)
        respond_buffered(server, request_id, b"12345", "text/plain")
        response_of(client).read()
        wait_until(lambda: len(records) == 1)
    (record,) = records
    assert record["requestId"] == request_id
    assert (record["httpMethod"], record["path"], record["status"]) == ("POST", "/invoke", 200)
    assert record["responseLength"] == 5
    assert record["integration.responseTransferMode"] == "STREAM"
    headers_at = record["integration.timeToAllHeaders"]
    assert 0 <= headers_at <= record["integration.timeToFirstContent"] <= record["responseLatency"]


# The API Gateway view


def test_unknown_path_or_method_is_403_missing_authentication_token(server):
    for method, path in [("GET", "/nowhere"), ("GET", "/invoke"), ("GET", "/stream")]:
        response = response_of(send_request(server, method, path), method)
        assert response.status == 403
        assert json.loads(response.read()) == {"message": "Missing Authentication Token"}


def test_request_becomes_a_rest_proxy_event(server):
    send_request(
        server,
        "POST",
        "/prod/stream?a=1&a=2",
        b"\xff\xfe",
        (("X-Custom", "one"), ("X-Custom", "two")),
    )
    _, raw = next_invocation(server)
    event = json.loads(raw)
    assert event["resource"] == "/stream"
    assert event["path"] == "/stream"
    assert event["httpMethod"] == "POST"
    assert event["multiValueHeaders"]["X-Custom"] == ["one", "two"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["queryStringParameters"] == {"a": "2"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"
    context = event["requestContext"]
    assert (context["stage"], context["path"]) == ("prod", "/prod/stream")
    assert context["identity"]["sourceIp"] == "127.0.0.1"


def test_prelude_becomes_status_and_headers_and_the_rest_streams(server):
    client = send_request(server, "GET", "/prod/stream")
    request_id = next_request_id(server)
    stream = open_stream(server, request_id)
    document = {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-Both": "loses"},
        "multiValueHeaders": {"x-both": ["wins"]},
        "cookies": ["a=1", "b=2"],
    }
    send_chunk(stream, prelude(document)[:10])  # the prelude may come in pieces
    send_chunk(stream, prelude(document)[10:] + b"Number: 1\n")
    response = response_of(client, "GET")
    assert response.status == 201
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers.get_all("X-Both") == ["wins"]
    assert response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert response.read1(100) == b"Number: 1\n"
    send_chunk(stream, b"Number: 2\n")
    assert response.read1(100) == b"Number: 2\n"
    assert end_stream(stream)[0] == 202
    assert response.read() == b""


def test_error_before_the_prelude_is_502(server):
    client = send_request(server, "GET", "/prod/stream")
    request_id = next_request_id(server)
    status, _, _ = post(
        server, f"/2018-06-01/runtime/invocation/{request_id}/error", json.dumps(ERROR).encode()
    )
    assert status == 202
    response = response_of(client, "GET")
    assert response.status == 502
    assert json.loads(response.read()) == {"message": "Internal server error"}


def test_missing_prelude_is_500(server):
    client = send_request(server, "GET", "/prod/stream")
    request_id = next_request_id(server)
    assert respond_buffered(server, request_id, b'{"statusCode": 200}', PRELUDE_TYPE) == 202
    response = response_of(client, "GET")
    assert response.status == 500
    assert json.loads(response.read()) == {"message": "Internal server error"}


def test_prelude_past_16_kb_is_500(server):
    client = send_request(server, "GET", "/prod/stream")
    request_id = next_request_id(server)
    stream = open_stream(server, request_id)
    send_chunk(stream, prelude({"headers": {"x-big": "y" * 16384}}))
    response = response_of(client, "GET")  # answered before the stream ends
    assert response.status == 500
    assert json.loads(response.read()) == {"message": "Internal server error"}
    assert end_stream(stream)[0] == 202


def test_error_after_the_prelude_cuts_the_body(server):
    client = send_request(server, "GET", "/prod/stream")
    request_id = next_request_id(server)
    stream = open_stream(server, request_id)
    send_chunk(stream, prelude({"statusCode": 200}) + b"partial")
    response = response_of(client, "GET")
    assert response.status == 200
    assert response.read1(100) == b"partial"
    assert end_stream(stream, ERROR)[0] == 202
    with pytest.raises(CUT):
        response.read()


def test_timeout_before_the_prelude_is_502():
    with running_server(timeout_seconds=0.2) as server:
        client = send_request(server, "GET", "/prod/stream")
        next_request_id(server)
        response = response_of(client, "GET")
        assert response.status == 502


# With the real runtime loop


@contextmanager
def running_function(handler: Callable, **options: object) -> Iterator[LocalServer]:
    with running_server(**options) as server:
        loop = threading.Thread(target=serve, args=(handler, server.runtime_api), daemon=True)
        loop.start()
        yield server
    loop.join(5)
    assert not loop.is_alive(), "serve() must return once the server is gone"


def numbers(event, writer, context):
    writer.write_status_and_headers(
        200, {"Content-Type": "text/plain", "x-my-custom-header": "streaming-example"}
    )
    for number in (1, 2, 3):
        writer.write(f"Number: {number}\n")
    writer.write("Streaming complete!\n")
    writer.finish()


def fails_at_once(event, writer, context):
    raise ValueError("nothing written yet")


def fails_midway(event, writer, context):
    writer.write_status_and_headers(200, {"Content-Type": "text/plain"})
    writer.write("partial\n")
    raise ValueError("after the first line")


def request(server: LocalServer, method: str, path: str, body: bytes | None = None):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    connection.request(method, path, body=body)
    return connection.getresponse()


def test_end_to_end_handler_streams_through_the_api_gateway_view():
    with running_function(numbers) as server:
        response = request(server, "GET", "/prod/stream")
        assert response.status == 200
        assert response.headers["x-my-custom-header"] == "streaming-example"
        assert response.read().decode().splitlines() == [
            "Number: 1",
            "Number: 2",
            "Number: 3",
            "Streaming complete!",
        ]


def test_end_to_end_invoke_returns_the_raw_stream():
    with running_function(numbers) as server:
        response = request(server, "POST", "/invoke", b'"this is not used"')
        assert response.headers["Content-Type"] == PRELUDE_TYPE
        json_part, _, body = response.read().partition(DELIMITER)
        assert json.loads(json_part)["statusCode"] == 200
        assert body.startswith(b"Number: 1\n")


def test_end_to_end_exception_before_the_first_byte_is_502():
    with running_function(fails_at_once) as server:
        assert request(server, "GET", "/prod/stream").status == 502
        response = request(server, "POST", "/invoke", b"{}")
        assert response.headers["X-Amz-Function-Error"] == "Unhandled"
        assert json.loads(response.read())["errorMessage"] == "nothing written yet"


def test_end_to_end_exception_midway_cuts_the_body_and_the_loop_goes_on():
    with running_function(fails_midway) as server:
        response = request(server, "GET", "/prod/stream")
        assert response.status == 200
        with pytest.raises(CUT):
            response.read()
        second = request(server, "GET", "/prod/stream")
        assert second.status == 200
        assert second.read1(100) == b"partial\n"


# Issue 3: API Gateway as the client sees it

KEYS = Credentials("AKIDLOCAL", "local-secret")


def signed_request(
    server: LocalServer,
    method: str = "GET",
    query: str = "",
    body: bytes = b"",
    keys: Credentials = KEYS,
    now: datetime | None = None,
) -> http.client.HTTPResponse:
    path = f"/prod/stream{'?' + query if query else ''}"
    host = f"{server.host}:{server.port}"
    request = sign_request(
        SignedRequest(method, "/prod/stream", query, (("Host", host),), body),
        keys,
        region=server.region,
        now=now or datetime.now(UTC),
    )
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    connection.request(method, path, body=body or None, headers=dict(request.headers))
    return connection.getresponse()


def answer(server: LocalServer, body: bytes) -> None:
    """Play the runtime: take the next invocation and stream `body` as its response."""
    stream = open_stream(server, next_request_id(server))
    send_chunk(stream, body)
    end_stream(stream)


def test_iam_unsigned_request_is_403_missing_authentication_token():
    with running_server(auth="IAM", credentials=KEYS) as server:
        response = request(server, "GET", "/prod/stream")
        assert response.status == 403
        assert json.loads(response.read()) == {"message": "Missing Authentication Token"}
        assert not server._pending


def test_iam_bad_signature_or_stale_date_is_403():
    with running_server(auth="IAM", credentials=KEYS) as server:
        wrong = signed_request(server, keys=Credentials("AKIDLOCAL", "wrong"))
        assert wrong.status == 403
        assert "does not match" in json.loads(wrong.read())["message"]
        assert wrong.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
        stale = signed_request(server, now=datetime.now(UTC) - timedelta(minutes=6))
        assert stale.status == 403
        assert "Signature expired" in json.loads(stale.read())["message"]


def test_iam_without_local_credentials_refuses_every_signed_request():
    with running_server(auth="IAM", credentials=None) as server:
        response = signed_request(server)
        assert response.status == 403
        assert json.loads(response.read())["message"] == (
            "The security token included in the request is invalid."
        )


def test_iam_signed_request_streams_and_the_event_names_the_access_key():
    with running_server(auth="IAM", credentials=KEYS) as server:
        results: list = []
        thread = threading.Thread(
            target=lambda: results.append(signed_request(server, "POST", "a=1", b"hi"))
        )
        thread.start()
        response, raw = next_invocation(server)
        event = json.loads(raw)
        assert event["requestContext"]["identity"]["accessKey"] == "AKIDLOCAL"
        assert event["body"] == "hi"
        stream = open_stream(server, response.headers["Lambda-Runtime-Aws-Request-Id"])
        send_chunk(stream, prelude({"statusCode": 200}) + b"streamed")
        end_stream(stream)
        thread.join(5)
        assert results[0].status == 200
        assert results[0].read() == b"streamed"


def test_auth_none_lets_anyone_in():
    with running_server(auth="NONE", credentials=KEYS) as server:
        client = send_request(server, "GET", "/prod/stream")
        answer(server, prelude({"statusCode": 200}) + b"open")
        assert response_of(client, "GET").read() == b"open"


def curl_with_sigv4() -> str:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    help_text = subprocess.run([curl, "--help", "all"], capture_output=True, text=True).stdout
    if "--aws-sigv4" not in help_text:
        pytest.skip("this curl has no --aws-sigv4")
    return curl


def test_curl_aws_sigv4_request_streams_through_iam():
    curl = curl_with_sigv4()
    with running_function(numbers, auth="IAM", credentials=KEYS) as server:
        result = subprocess.run(
            [
                curl,
                "-sS",
                "--aws-sigv4",
                f"aws:amz:{server.region}:execute-api",
                "--user",
                f"{KEYS.access_key_id}:{KEYS.secret_access_key}",
                f"http://{server.host}:{server.port}/prod/stream",
            ],
            capture_output=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().splitlines()[0] == "Number: 1"
        unsigned = subprocess.run(
            [curl, "-sS", f"http://{server.host}:{server.port}/prod/stream"],
            capture_output=True,
            timeout=30,
        )
        assert json.loads(unsigned.stdout) == {"message": "Missing Authentication Token"}


def test_botocore_signed_request_streams_through_iam():
    pytest.importorskip("botocore")
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    with running_function(numbers, auth="IAM", credentials=KEYS) as server:
        url = f"http://{server.host}:{server.port}/prod/stream"
        boto_request = AWSRequest("GET", url)
        boto_keys = BotoCredentials(KEYS.access_key_id, KEYS.secret_access_key)
        SigV4Auth(boto_keys, "execute-api", server.region).add_auth(boto_request)
        connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
        connection.request("GET", "/prod/stream", headers=dict(boto_request.headers.items()))
        response = connection.getresponse()
        assert response.status == 200
        assert response.read().startswith(b"Number: 1\n")


def test_request_without_query_body_or_path_parameters_has_api_gateways_nulls(server):
    send_request(server, "GET", "/prod/stream")
    _, raw = next_invocation(server)
    event = json.loads(raw)
    for name in (
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ):
        assert event[name] is None, name
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert uuid.UUID(context["requestId"])
    assert context["resourcePath"] == "/stream"
    assert context["requestTimeEpoch"] / 1000 == pytest.approx(time.time(), abs=60)
    assert event["headers"]["X-Amzn-Trace-Id"].startswith("Root=1-")


def test_each_request_gets_a_fresh_request_id(server):
    ids = []
    for _ in range(2):
        client = send_request(server, "GET", "/prod/stream")
        response, raw = next_invocation(server)
        ids.append(json.loads(raw)["requestContext"]["requestId"])
        respond_buffered(
            server, response.headers["Lambda-Runtime-Aws-Request-Id"], prelude({}), PRELUDE_TYPE
        )
        response_of(client, "GET").read()
    assert ids[0] != ids[1]


def test_request_body_over_api_gateways_10_mb_is_413(server):
    connection = socket.create_connection((server.host, server.port), timeout=5)
    connection.sendall(
        b"POST /prod/stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
        % (MAX_API_REQUEST_BYTES + 1)
    )
    response = response_of(connection)
    assert response.status == 413
    assert json.loads(response.read()) == {"message": "Request Entity Too Large"}
    assert not server._pending


def test_request_body_between_6_and_10_mb_passes_api_gateway_but_not_lambda(server):
    client = send_request(server, "POST", "/prod/stream", b"x" * (7 * 1024 * 1024))
    response = response_of(client)
    assert response.status == 413
    assert not server._pending


def test_content_length_set_by_the_function_is_kept_and_the_body_is_not_chunked(server):
    client = send_request(server, "GET", "/prod/stream")
    answer(server, prelude({"headers": {"Content-Length": "5"}}) + b"hello")
    response = response_of(client, "GET")
    assert response.headers["Content-Length"] == "5"
    assert response.headers.get("Transfer-Encoding") is None
    assert response.read() == b"hello"


def test_content_length_longer_than_the_body_cuts_the_response(server):
    client = send_request(server, "GET", "/prod/stream")
    answer(server, prelude({"headers": {"Content-Length": "50"}}) + b"short")
    with pytest.raises(CUT):
        response_of(client, "GET").read()


@pytest.mark.parametrize(
    "pieces",
    [
        [bytes(range(256))],  # binary, every byte value
        [gzip.compress(b"Number: 1\n" * 100)],
        ["h\u00e9llo \u2603".encode()[:2], "h\u00e9llo \u2603".encode()[2:]],  # é split in two
    ],
    ids=["binary", "gzip", "utf8-split"],
)
def test_body_bytes_pass_through_untouched(pieces):
    def handler(event, writer, context):
        writer.write_status_and_headers(200, {"Content-Encoding": "identity"})
        for piece in pieces:
            writer.write(piece)

    with running_function(handler) as server:
        response = request(server, "GET", "/prod/stream")
        assert response.read() == b"".join(pieces)


def test_empty_throttling_bucket_answers_429_without_invoking():
    tokens = iter([True, False])
    with running_server(throttle=lambda: next(tokens)) as server:
        first = send_request(server, "GET", "/prod/stream")
        queued(server, 1)
        second = response_of(send_request(server, "GET", "/prod/stream"), "GET")
        assert second.status == 429
        assert json.loads(second.read()) == {"message": "Too Many Requests"}
        assert len(server._pending) == 1
        first.close()


def test_api_gateway_access_log_record_has_streaming_timings():
    records: list[dict] = []
    with running_function(numbers, access_log=records.append) as server:
        request(server, "GET", "/prod/stream?x=1").read()
        wait_until(lambda: len(records) == 1)
    (record,) = records
    assert record["resourcePath"] == "/stream"
    assert record["path"] == "/prod/stream"
    assert record["status"] == 200
    assert record["responseLength"] == len("Number: 1\nNumber: 2\nNumber: 3\nStreaming complete!\n")
    assert record["integration.responseTransferMode"] == "STREAM"
    assert uuid.UUID(record["integration.requestId"])
    first = record["integration.timeToFirstContent"]
    assert 0 <= record["integration.timeToAllHeaders"] <= first <= record["responseLatency"]


def test_access_log_is_one_json_line_on_stderr_by_default(capfd):
    with running_server() as server:
        response_of(send_request(server, "GET", "/nowhere"), "GET").read()
        wait_until(lambda: "/nowhere" in capfd.readouterr().err or False)


# Several clients at once


def blocking_handler(release: threading.Event, started: list):
    def handler(event, writer, context):
        started.append(context.aws_request_id)
        writer.write_status_and_headers(200, {})
        writer.write("begun\n")
        release.wait(5)
        writer.write("done\n")

    return handler


@contextmanager
def environments(handler: Callable, count: int, **options: object) -> Iterator[LocalServer]:
    with running_server(**options) as server:
        pool = ExecutionEnvironments(server, handler, count)
        pool.start()
        yield server


def test_one_environment_serves_requests_one_after_the_other():
    release, started = threading.Event(), []
    with environments(blocking_handler(release, started), 1) as server:
        first = request(server, "GET", "/prod/stream")
        assert first.read1(100) == b"begun\n"
        second = send_request(server, "GET", "/prod/stream")
        queued(server, 1)  # waits while the only environment is busy
        assert len(started) == 1
        release.set()
        assert first.read() == b"done\n"
        assert response_of(second, "GET").read() == b"begun\ndone\n"


def test_two_environments_serve_two_requests_at_once():
    release, started = threading.Event(), []
    with environments(blocking_handler(release, started), 2) as server:
        first = request(server, "GET", "/prod/stream")
        second = request(server, "GET", "/prod/stream")
        assert first.read1(100) == b"begun\n"
        assert second.read1(100) == b"begun\n"  # both started before either finished
        release.set()
        assert first.read() == second.read() == b"done\n"


def test_with_one_environment_the_next_request_waits_for_an_abandoned_function_to_finish():
    release, started = threading.Event(), []
    with environments(blocking_handler(release, started), 1) as server:
        abandoned = send_request(server, "GET", "/prod/stream")
        wait_until(lambda: len(started) == 1)
        abandoned.close()
        second = send_request(server, "GET", "/prod/stream")
        queued(server, 1)
        time.sleep(0.2)  # the abandoned function still runs: the second request stays queued
        assert len(started) == 1 and len(server._pending) == 1
        release.set()
        assert response_of(second, "GET").read() == b"begun\ndone\n"
        assert len(started) == 2


def test_timed_out_environment_is_replaced_and_the_next_request_is_served(caplog):
    release, started = threading.Event(), []
    with environments(blocking_handler(release, started), 1, timeout_seconds=0.3) as server:
        stuck = request(server, "GET", "/prod/stream")
        assert stuck.read1(100) == b"begun\n"
        with pytest.raises(CUT):
            stuck.read()
        assert "Task timed out after 0.30 seconds" in caplog.text
        release.set()  # the replacement and the overrunning thread both serve this
        assert request(server, "GET", "/prod/stream").read() == b"begun\ndone\n"
        # Once the overrunning handler returns, its thread is turned away: one environment again.
        wait_until(
            lambda: sum(t.name.startswith("lambda-runtime") for t in threading.enumerate()) == 1
        )


def exits(event, writer, context):
    if b"midway" in event:
        writer.write_status_and_headers(200, {})
        writer.write("begun\n")
    if b"stay" not in event:
        sys.exit(3)
    writer.write_status_and_headers(200, {})
    writer.write("still serving\n")


def test_handler_calling_sys_exit_fails_the_invocation_and_local_mode_keeps_serving(caplog):
    with environments(exits, 1) as server:
        response = request(server, "POST", "/invoke", b"{}")
        assert response.headers["X-Amz-Function-Error"] == "Unhandled"
        error = json.loads(response.read())
        assert error["errorType"] == "Runtime.ExitError"
        assert error["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
        assert "ended its execution environment" in caplog.text

        assert request(server, "GET", "/prod/stream").status == 502  # before the prelude
        midway = request(server, "GET", "/prod/stream", b"midway")
        assert midway.status == 200
        with pytest.raises(CUT):
            midway.read()  # after the prelude: the stream is cut

        still = request(server, "POST", "/invoke", b'"stay"')
        assert still.read().partition(DELIMITER)[2] == b"still serving\n"
        # One environment again: each one that exited was replaced, not added to.
        wait_until(
            lambda: sum(t.name.startswith("lambda-runtime") for t in threading.enumerate()) == 1
        )


def test_runtime_api_answers_from_outside_the_environments_are_refused():
    release, started = threading.Event(), []
    release.set()
    with running_server(timeout_seconds=1) as server:
        pool = ExecutionEnvironments(server, blocking_handler(release, started), 1)
        evil = {"errorMessage": "x", "errorType": "Evil"}
        status, _, body = post(server, "/2018-06-01/runtime/init/error", json.dumps(evil).encode())
        assert status == 403
        assert json.loads(body)["errorType"] == "Forbidden"

        # An outsider that takes an invocation before the environments ask still cannot answer it.
        stolen = send_request(server, "POST", "/invoke", b"{}")
        invocation = f"/2018-06-01/runtime/invocation/{next_request_id(server)}"
        assert post(server, f"{invocation}/error", json.dumps(evil).encode())[0] == 403
        assert post(server, f"{invocation}/response", b"stolen")[0] == 403
        assert json.loads(response_of(stolen).read())["errorType"] == "Sandbox.Timedout"

        pool.start()
        later = request(server, "POST", "/invoke", b"{}")
        assert "X-Amz-Function-Error" not in later.headers
        assert later.read().endswith(b"begun\ndone\n")


def test_a_handler_that_cannot_load_fails_waiting_invocations_and_stops_local_mode():
    with running_server() as server:
        client = send_request(server, "POST", "/invoke", b"{}")
        queued(server, 1)
        pool = ExecutionEnvironments(server, "no_such_module.handler", 1)
        pool.start()
        response = response_of(client)
        assert response.headers["X-Amz-Function-Error"] == "Unhandled"
        assert json.loads(response.read())["errorType"] == "Runtime.ImportModuleError"
        wait_until(lambda: pool.init_failed)
