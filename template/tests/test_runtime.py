"""The runtime loop speaks the Runtime API exactly (STREAMING-PROTOCOL.md sections 1 and 2)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runtime_api_double import FUNCTION_ARN, RecordedRequest, RuntimeApiDouble

from lambda_streaming import Context, ResponseStreamWriter
from lambda_streaming.protocol import PRELUDE_DELIMITER
from lambda_streaming.runtime import serve

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Runtime:
    """A runtime loop in a thread, serving ``handler`` from a recording Runtime API."""

    def __init__(self, handler: object) -> None:
        self.api = RuntimeApiDouble()
        self.thread = threading.Thread(target=serve, args=(handler, self.api.address), daemon=True)
        self.thread.start()

    def invoke(self, event: bytes = b'"this is not used"', **headers: str) -> RecordedRequest:
        count = len(self.api.answered()) + 1
        self.api.invoke(event, **headers)
        return self.api.wait_for(count)[count - 1]


@pytest.fixture
def run() -> Iterator[Callable[[object], Runtime]]:
    runtimes: list[Runtime] = []

    def start(handler: object) -> Runtime:
        runtimes.append(Runtime(handler))
        return runtimes[-1]

    yield start
    for runtime in runtimes:
        runtime.api.close()
        runtime.thread.join(5)
        assert not runtime.thread.is_alive(), "serve() must return once the Runtime API is gone"


def prelude_and_body(request: RecordedRequest) -> tuple[dict, bytes]:
    json_part, delimiter, body = request.body.partition(PRELUDE_DELIMITER)
    assert delimiter, "the stream must start with the prelude"
    return json.loads(json_part), body


def streams_hello(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
    writer.write_status_and_headers(200, {"Content-Type": "text/plain"})
    writer.write("hello ")
    writer.write(b"world")
    writer.finish()


def test_response_is_posted_in_streaming_mode_with_chunked_encoding(run):
    request = run(streams_hello).invoke()
    assert request.method == "POST"
    assert request.path == "/2018-06-01/runtime/invocation/request-1/response"
    assert request.headers["lambda-runtime-function-response-mode"] == "streaming"
    assert request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in request.headers


def test_content_type_announces_the_http_integration_prelude(run):
    request = run(streams_hello).invoke()
    assert request.headers["content-type"] == "application/vnd.awslambda.http-integration-response"


def test_error_trailers_are_declared_up_front(run):
    request = run(streams_hello).invoke()
    declared = {name.strip() for name in request.headers["trailer"].split(",")}
    assert declared == {"Lambda-Runtime-Function-Error-Type", "Lambda-Runtime-Function-Error-Body"}


def test_each_write_is_its_own_chunk_after_the_prelude_chunk(run):
    request = run(streams_hello).invoke()
    assert request.chunks[1:] == [b"hello ", b"world"]
    prelude, body = prelude_and_body(request)
    assert prelude == {"statusCode": 200, "headers": {"Content-Type": "text/plain"}}
    assert body == b"hello world"
    assert request.trailers == {}


def test_connection_is_closed_after_each_streamed_response(run):
    request = run(streams_hello).invoke()
    assert request.closed_by_client


def test_invocations_are_served_one_after_another(run):
    runtime = run(streams_hello)
    paths = [runtime.invoke().path for _ in range(5)]
    assert paths == [f"/2018-06-01/runtime/invocation/request-{n}/response" for n in range(1, 6)]


def raises_before_writing(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
    raise ValueError("no good event")


def test_error_before_the_first_byte_goes_to_the_error_endpoint(run):
    request = run(raises_before_writing).invoke()
    assert request.path == "/2018-06-01/runtime/invocation/request-1/error"
    assert request.headers["lambda-runtime-function-error-type"] == "Function.ValueError"
    error = json.loads(request.body)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "no good event"
    assert any("raises_before_writing" in line for line in error["stackTrace"])


def raises_after_writing(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
    writer.write_status_and_headers(200)
    writer.write("partial ")
    raise RuntimeError("lost the upstream")


def test_error_after_the_first_byte_goes_to_the_trailers_as_base64_json(run):
    request = run(raises_after_writing).invoke()
    assert request.path.endswith("/request-1/response")
    assert prelude_and_body(request)[1] == b"partial "
    assert request.trailers["Lambda-Runtime-Function-Error-Type"] == "Function.RuntimeError"
    error = json.loads(base64.b64decode(request.trailers["Lambda-Runtime-Function-Error-Body"]))
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "lost the upstream"
    assert request.closed_by_client


def test_the_loop_survives_handler_errors_and_serves_the_next_invocation(run):
    failures = iter([True, False])

    def sometimes_fails(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
        if next(failures):
            raise KeyError("first one fails")
        writer.write_and_finish("second one works")

    runtime = run(sometimes_fails)
    assert runtime.invoke().path.endswith("/error")
    assert prelude_and_body(runtime.invoke())[1] == b"second one works"


def test_a_handler_that_forgets_to_finish_is_finished_by_the_runtime(run):
    def forgets(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
        writer.write("no finish")

    request = run(forgets).invoke()
    assert prelude_and_body(request) == ({"statusCode": 200}, b"no finish")


def test_a_handler_that_writes_nothing_answers_200_with_an_empty_body(run):
    request = run(lambda event, writer, context: None).invoke()
    assert prelude_and_body(request) == ({"statusCode": 200}, b"")


def returns_a_buffered_response(event, writer, context):
    return {"statusCode": 404, "body": "not found"}


async def returns_from_a_coroutine(event, writer, context):
    return "ignored"


def is_a_generator(event, writer, context):
    yield b"never sent"


async def is_an_async_generator(event, writer, context):
    yield b"never sent"


@pytest.mark.parametrize(
    ("handler", "named"),
    [
        (returns_a_buffered_response, "the handler returned a dict: the return value is ignored"),
        (returns_from_a_coroutine, "the handler returned a str: the return value is ignored"),
        (is_a_generator, "the handler is a generator function: its body never ran"),
        (is_an_async_generator, "the handler is an async generator function: its body never ran"),
    ],
)
def test_a_handler_that_returns_something_gets_a_warning_once_per_invocation(
    run, capsys, handler, named
):
    runtime = run(handler)
    request = runtime.invoke()
    assert prelude_and_body(request) == ({"statusCode": 200}, b"")
    runtime.invoke()
    warnings = [line for line in capsys.readouterr().err.splitlines() if "[WARNING]" in line]
    assert len(warnings) == 2
    assert named in warnings[0]
    assert "a streaming handler writes its response to writer" in warnings[0]


def test_a_handler_that_returns_none_gets_no_warning(run, capsys):
    run(streams_hello).invoke()
    assert "[WARNING]" not in capsys.readouterr().err


def test_the_event_reaches_the_handler_as_bytes_untouched(run):
    seen: list[bytes] = []

    def records(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
        seen.append(event)

    run(records).invoke(b'{"not": "valid json"')
    assert seen == [b'{"not": "valid json"']


def test_async_handlers_are_awaited(run):
    async def handler(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
        writer.write("before ")
        await asyncio.sleep(0)
        writer.write("after")

    request = run(handler).invoke()
    assert prelude_and_body(request)[1] == b"before after"


class Greeter:
    def __init__(self) -> None:
        self.greeting = "hi from handle"

    def handle(self, event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
        writer.write_and_finish(self.greeting)


class AsyncGreeter:
    async def handle(self, event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
        writer.write_and_finish("async handle")


@pytest.mark.parametrize(
    ("handler", "body"),
    [
        (Greeter(), b"hi from handle"),
        (Greeter, b"hi from handle"),
        (AsyncGreeter(), b"async handle"),
    ],
)
def test_objects_with_handle_are_handlers(run, handler, body):
    assert prelude_and_body(run(handler).invoke())[1] == body


def test_context_carries_the_invocation_and_the_function(run, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "my-function")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    seen: list[Context] = []
    trace: list[str | None] = []

    def records(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
        seen.append(context)
        trace.append(os.environ.get("_X_AMZN_TRACE_ID"))

    run(records).invoke(Lambda_Runtime_Trace_Id="Root=1-abc;Sampled=1")
    context = seen[0]
    assert context.aws_request_id == "request-1"
    assert context.invoked_function_arn == FUNCTION_ARN
    assert context.deadline_ms == 4102444800000
    assert context.get_remaining_time_in_millis() > 0
    assert (context.function_name, context.memory_limit_in_mb) == ("my-function", 512)
    assert context.trace_id == "Root=1-abc;Sampled=1"
    assert trace == ["Root=1-abc;Sampled=1"]


def run_lambda_mode(handler: str, api: RuntimeApiDouble, timeout: float = 20):
    """The runtime as Lambda starts it: ``exec-wrapper <python> /var/runtime/bootstrap.py``."""
    env = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(PROJECT_ROOT),
        "PYTHONPATH": "",
    }
    return subprocess.Popen(
        ["sh", str(PROJECT_ROOT / "exec-wrapper"), sys.executable, "/var/runtime/bootstrap.py"],
        cwd="/",
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_an_unimportable_handler_goes_to_init_error_and_the_process_exits_non_zero():
    api = RuntimeApiDouble()
    process = run_lambda_mode("no_such_module.handler", api)
    try:
        assert process.wait(20) != 0
        (request,) = api.wait_for(1)
    finally:
        api.close()
    assert request.path == "/2018-06-01/runtime/init/error"
    assert request.headers["lambda-runtime-function-error-type"] == "Runtime.ImportModuleError"
    assert "no_such_module" in json.loads(request.body)["errorMessage"]


def test_a_missing_handler_attribute_is_reported_as_handler_not_found():
    api = RuntimeApiDouble()
    process = run_lambda_mode("lambda_streaming.protocol.no_such_handler", api)
    try:
        assert process.wait(20) != 0
        (request,) = api.wait_for(1)
    finally:
        api.close()
    assert request.headers["lambda-runtime-function-error-type"] == "Runtime.HandlerNotFound"


def test_lambda_mode_streams_the_example_and_logs_carry_the_request_id():
    api = RuntimeApiDouble()
    process = run_lambda_mode("tests.sample_handlers.logs_and_streams", api)
    try:
        request_id = api.invoke(b"{}")
        (request,) = api.wait_for(1)
    finally:
        api.close()
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert prelude_and_body(request)[1] == b"logged"
    log_line = next(line for line in stderr.splitlines() if "hello from the handler" in line)
    assert request_id in log_line.split("\t")


def test_python_m_lambda_streaming_runs_the_lambda_loop_too():
    api = RuntimeApiDouble()
    env = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "_HANDLER": "tests.sample_handlers.logs_and_streams",
        "PYTHONPATH": "",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "lambda_streaming"], cwd=PROJECT_ROOT, env=env, text=True
    )
    try:
        api.invoke(b"{}")
        (request,) = api.wait_for(1)
    finally:
        api.close()
    assert process.wait(20) == 0
    assert prelude_and_body(request)[1] == b"logged"


def test_without_the_site_module_site_packages_stay_importable():
    """The exec wrapper starts Python with -S; the runtime adds back what ``site`` would add to
    ``sys.path`` (where the managed runtime keeps boto3)."""
    show_path = "import json, sys; print(json.dumps(sys.path))"
    added = (
        "import json, sys; from lambda_streaming.runtime import add_site_packages;"
        " add_site_packages(); print(json.dumps(sys.path))"
    )
    site_dirs = "import json, os, site; print(json.dumps([d for d in site.getsitepackages()"
    site_dirs += " if os.path.isdir(d)]))"

    def python(*arguments: str) -> list[str]:
        result = subprocess.run(
            [sys.executable, *arguments], cwd=PROJECT_ROOT, capture_output=True, check=True
        )
        return json.loads(result.stdout)

    wanted = python("-c", site_dirs)
    assert wanted
    assert not set(wanted) & set(python("-S", "-c", show_path))
    assert set(wanted) <= set(python("-S", "-c", added))


def test_layers_python_folders_come_right_after_the_task_root(tmp_path, monkeypatch):
    from lambda_streaming.runtime import add_layer_directories

    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site_packages = tmp_path / "python" / "lib" / version / "site-packages"
    site_packages.mkdir(parents=True)
    task_root = str(tmp_path / "task")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", task_root)
    monkeypatch.setattr(sys, "path", [task_root, "/var/runtime"])
    add_layer_directories(str(tmp_path))
    add_layer_directories(str(tmp_path))  # idempotent
    assert sys.path == [task_root, str(site_packages), str(tmp_path / "python"), "/var/runtime"]


def test_a_function_without_layers_keeps_its_path(tmp_path, monkeypatch):
    from lambda_streaming.runtime import add_layer_directories

    monkeypatch.setattr(sys, "path", ["/var/task"])
    add_layer_directories(str(tmp_path / "no-layers"))
    assert sys.path == ["/var/task"]


def test_a_runtime_api_that_hangs_up_after_the_whole_body_is_no_handler_error(capsys):
    from lambda_streaming.runtime_api import Endpoint, StreamingResponse

    listener = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def take_the_body_and_hang_up() -> None:
        connection, _ = listener.accept()
        with connection:
            while not received.endswith(b"0\r\n\r\n"):
                received.extend(connection.recv(65536))

    server = threading.Thread(target=take_the_body_and_hang_up)
    server.start()
    endpoint = Endpoint(f"127.0.0.1:{listener.getsockname()[1]}")
    try:
        assert StreamingResponse(endpoint, "request-1").finish(b"whole") is None
    finally:
        server.join(10)
        listener.close()
    assert received.endswith(b"5\r\nwhole\r\n0\r\n\r\n")
    assert "no answer from the Runtime API" in capsys.readouterr().err


def test_in_lambda_a_handler_calling_sys_exit_ends_the_process_with_its_status():
    # Lambda then fails the invocation with Runtime.ExitError and starts a new environment.
    api = RuntimeApiDouble()
    process = run_lambda_mode("tests.sample_handlers.exits_with_3", api)
    try:
        api.invoke(b"{}")
        assert process.wait(20) == 3
    finally:
        api.close()
    assert api.answered() == []  # nothing reported: the process is gone
