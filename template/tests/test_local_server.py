"""LocalServer over real sockets: the Runtime API, POST /invoke and the API Gateway view.

The first tests play the runtime by hand with raw sockets, which pins the protocol byte by byte;
the last ones run the real runtime loop (`lambda_streaming.runtime.serve`) against the server.
"""

import base64
import contextlib
import http.client
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from lambda_streaming.local_server import LocalServer
from lambda_streaming.runtime import serve

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


def test_malformed_event_json_is_passed_to_the_function_as_is(server):
    send_request(server, "POST", "/invoke", b"{not json")
    _, event = next_invocation(server)
    assert event == b"{not json"


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
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=1)


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
    gone = send_request(server, "POST", "/invoke", b"gone")
    queued(server, 1)
    gone.close()  # nothing else holds this socket
    queued(server, 0)
    send_request(server, "POST", "/invoke", b"stays")
    _, event = next_invocation(server)
    assert event == b"stays"


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


def test_one_log_line_per_client_request(server, caplog):
    caplog.set_level(logging.INFO, logger="lambda_streaming.local_server")
    client = send_request(server, "POST", "/invoke", b"{}")
    request_id = next_request_id(server)
    respond_buffered(server, request_id, b"12345", "text/plain")
    response_of(client).read()
    wait_until(lambda: request_id in caplog.text)
    lines = [r.getMessage() for r in caplog.records if r.name == "lambda_streaming.local_server"]
    assert len(lines) == 1
    assert re.fullmatch(rf"{request_id} POST /invoke 200 5 bytes \d+\.\d{{3}} s", lines[0])


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
