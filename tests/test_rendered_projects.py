"""End to end, per variant: render the template, then do what a user does with the project.

For each variant the project's own tests pass, local mode streams over a real socket (the first
line arrives well before the last, with http.client and with curl), Ctrl-C stops it cleanly, and
ruff finds nothing to fix. Each variant is rendered once per pytest-xdist worker, and all of a
variant's tests share one `xdist_group`, so `--dist loadgroup` (dev.py's command) sends each
variant to one worker.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TEMPLATE_ROOT, render, sam_validate_lint

VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "auth-none": {"auth": "NONE"},
    "x86_64-py312": {"architecture": "x86_64", "python_version": "3.12"},
    "my-api": {"project_name": "my-api", "api_path": "/v1/numbers", "stage_name": "dev"},
}

EXAMPLE_HEADERS = {"Content-Type": "text/plain", "x-my-custom-header": "streaming-example"}
EXAMPLE_LINES = ["Number: 1", "Number: 2", "Number: 3", "Streaming complete!"]
PRELUDE_DELIMITER = b"\x00" * 8
SEED_EVENT = b'"this is not used"'

# The example pauses this long after each number: 3 pauses between the first line and the last.
LOCAL_PAUSE_MS = 300
# Streaming shows as the first line arriving well before the last. A buffered response would deliver
# all lines at once; 1.5 pauses leaves ample margin for a slow machine. Never a wall-clock budget.
MIN_FIRST_TO_LAST_SECONDS = 1.5 * LOCAL_PAUSE_MS / 1000
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0  # generous: a clean Ctrl-C takes milliseconds
REQUEST_TIMEOUT_SECONDS = 60.0

# Local mode prints e.g. "Lambda invoke:  curl -N --data '...' http://127.0.0.1:7000/invoke".
INVOKE_URL = re.compile(r"http://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s/:]+):(?P<port>\d+)/invoke\b")
# Variables that would switch local mode to Lambda mode, another handler, port or pause.
CONTROLLED_VARIABLES = (
    "AWS_LAMBDA_RUNTIME_API",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "LOCAL_LAMBDA_HOST",
    "LOCAL_LAMBDA_PORT",
    "LOCAL_LAMBDA_INVOCATION_ENDPOINT",
    "STREAM_PAUSE_MS",
    "PYTHONPATH",
    "PYTEST_ADDOPTS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
# With auth IAM, local mode checks SigV4 against the keys in its environment: give it these.
LOCAL_ACCESS_KEY_ID = "AKIDLOCALTESTS"
LOCAL_SECRET_ACCESS_KEY = "local-tests-secret"


@dataclass(frozen=True)
class Variant:
    """A rendered project and the answers Copier recorded for it."""

    name: str
    root: Path
    answers: dict[str, Any]

    @property
    def package_name(self) -> str:
        return str(self.answers["package_name"])

    @property
    def api_gateway_path(self) -> str:
        return f"/{self.answers['stage_name']}{self.answers['api_path']}"

    @property
    def signed(self) -> bool:
        return self.answers["auth"] == "IAM"

    @property
    def curl_signing(self) -> list[str]:
        """curl's own SigV4 signing, as the README shows it, when the API uses IAM auth."""
        if not self.signed:
            return []
        return [
            "--aws-sigv4",
            f"aws:amz:{self.answers['aws_region']}:execute-api",
            "--user",
            f"{LOCAL_ACCESS_KEY_ID}:{LOCAL_SECRET_ACCESS_KEY}",
        ]


# Each variant's tests form one xdist group: with `--dist loadgroup` one worker renders it, once.
per_variant = pytest.mark.parametrize(
    "variant",
    [
        pytest.param(name, id=name, marks=pytest.mark.xdist_group(f"variant-{name}"))
        for name in VARIANTS
    ],
    indirect=True,
)


@pytest.fixture(scope="session")
def variant(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Variant:
    name: str = request.param
    answers = VARIANTS[name]
    if answers:
        root = render(tmp_path_factory.mktemp(name) / "project", **answers)
    else:
        root = request.getfixturevalue("default_project")
    recorded = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert all(recorded[key] == value for key, value in answers.items()), recorded
    return Variant(name, root, recorded)


def clean_environment(**overrides: str) -> dict[str, str]:
    """This process's environment without anything that would change what the project runs."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in CONTROLLED_VARIABLES and not key.startswith("PYTEST_XDIST")
    }
    return {**environment, **overrides}


def run(project: Path, *command: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=project,
        env=clean_environment(**environment),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def report(result: subprocess.CompletedProcess[str]) -> str:
    output = f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    return f"exit code {result.returncode}\n{output}"


@cache
def python_for(version: str) -> str:
    """An interpreter of the Lambda runtime's Python version when this machine has one.

    Local mode needs nothing installed, so it runs on the version the project deploys with if found
    (on PATH as pythonX.Y, or under pyenv); otherwise on the interpreter running these tests.
    """
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(
        str(p) for p in Path.home().glob(f".pyenv/versions/{version}.*/bin/python3")
    )
    check = (
        f"import sys; sys.exit(f'{{sys.version_info[0]}}.{{sys.version_info[1]}}' != '{version}')"
    )
    for candidate in filter(None, candidates):
        try:
            probe = subprocess.run([candidate, "-c", check], capture_output=True, check=False)
        except OSError:
            continue
        if probe.returncode == 0:
            return candidate
    return sys.executable


@dataclass
class LocalMode:
    """`python -m <package>` in local mode, its output drained by threads so it never blocks."""

    process: subprocess.Popen[bytes]
    host: str = ""
    port: int = 0
    stdout_lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen_stdout: list[str] = field(default_factory=list)
    stderr_chunks: list[bytes] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    def start_readers(self) -> None:
        stdout, stderr = self.process.stdout, self.process.stderr
        assert stdout is not None and stderr is not None

        def read_stdout() -> None:
            for raw in iter(stdout.readline, b""):
                self.stdout_lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
            self.stdout_lines.put(None)

        def read_stderr() -> None:
            for chunk in iter(lambda: stderr.read1(65536), b""):
                self.stderr_chunks.append(chunk)

        for target in (read_stdout, read_stderr):
            reader = threading.Thread(target=target, daemon=True)
            reader.start()
            self.readers.append(reader)

    def wait_until_ready(self) -> None:
        """Wait for the startup line that names the invoke URL; take the port from it."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.stdout_lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"local mode exited before printing its invoke URL\n{self.output()}")
            self.seen_stdout.append(line)
            if match := INVOKE_URL.search(line):
                self.host, self.port = match["host"].strip("[]"), int(match["port"])
                assert self.port != 0, f"local mode printed port 0, not the bound port: {line!r}"
                return
        pytest.fail(f"no invoke URL on stdout within {STARTUP_TIMEOUT_SECONDS} s\n{self.output()}")

    def stop(self) -> int:
        """Ctrl-C, as a user would; returns the exit code (kills and fails if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(
                    f"local mode still ran {STOP_TIMEOUT_SECONDS} s after SIGINT\n{self.output()}"
                )
        for reader in self.readers:
            reader.join(timeout=STOP_TIMEOUT_SECONDS)
        return self.process.returncode

    def stderr(self) -> str:
        return b"".join(self.stderr_chunks).decode("utf-8", "replace")

    def output(self) -> str:
        while not self.stdout_lines.empty():
            if (line := self.stdout_lines.get_nowait()) is not None:
                self.seen_stdout.append(line)
        stdout = "\n".join(self.seen_stdout)
        return f"--- local mode stdout ---\n{stdout}\n--- local mode stderr ---\n{self.stderr()}"


@contextmanager
def sigint_enabled_for_children() -> Iterator[None]:
    """Let child processes get SIGINT's default even when this process ignores it.

    A background job of a non-interactive shell (or nohup) starts with SIGINT ignored, children
    inherit that, and Python then never raises KeyboardInterrupt: Ctrl-C could not stop them.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    ):
        yield
        return
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def local_mode(variant: Variant) -> Iterator[LocalMode]:
    with sigint_enabled_for_children():
        process = subprocess.Popen(
            [python_for(str(variant.answers["python_version"])), "-m", variant.package_name],
            cwd=variant.root,
            env=clean_environment(
                LOCAL_LAMBDA_HOST="127.0.0.1",
                LOCAL_LAMBDA_PORT="0",
                STREAM_PAUSE_MS=str(LOCAL_PAUSE_MS),
                AWS_ACCESS_KEY_ID=LOCAL_ACCESS_KEY_ID,
                AWS_SECRET_ACCESS_KEY=LOCAL_SECRET_ACCESS_KEY,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    server = LocalMode(process)
    server.start_readers()
    try:
        server.wait_until_ready()
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class StreamedResponse:
    """A response read as it arrived: each line with the seconds since the request was sent."""

    status: int
    headers: dict[str, str]
    body: bytes
    lines: list[tuple[float, bytes]]

    def arrival_of(self, text: str) -> float:
        times = [at for at, line in self.lines if line.endswith(text.encode())]
        assert times, f"no line ends with {text!r}: {self.lines}"
        return times[0]


def split_lines(pending: bytes, at: float, lines: list[tuple[float, bytes]]) -> bytes:
    """Move every complete line of `pending` into `lines`, stamped `at`; return the remainder."""
    *complete, rest = pending.split(b"\n")
    lines.extend((at, line.rstrip(b"\r")) for line in complete)
    return rest


def sigv4_headers(host: str, method: str, path: str, body: bytes, region: str) -> dict[str, str]:
    """Sign a request without a query string for execute-api with AWS Signature Version 4.

    Written from AWS's description of the algorithm, independently of the project's verifier.
    """
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{region}/execute-api/aws4_request"
    signed_headers = [f"host:{host}", f"x-amz-date:{amz_date}"]
    payload_hash = hashlib.sha256(body).hexdigest()
    # method, URI, query, headers (each line, then an empty line), their names, payload hash
    canonical_request = "\n".join(
        [method, path, "", *signed_headers, "", "host;x-amz-date", payload_hash]
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{LOCAL_SECRET_ACCESS_KEY}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    credential = f"{LOCAL_ACCESS_KEY_ID}/{scope}"
    return {
        "Host": host,
        "X-Amz-Date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}",
    }


def call_api_gateway_view(
    server: LocalMode, variant: Variant, *, sign: bool | None = None
) -> StreamedResponse:
    """GET /<stage><api_path>, signed when the variant's API uses IAM auth (or as `sign` says)."""
    headers = {}
    if variant.signed if sign is None else sign:
        host = f"{server.host}:{server.port}"
        region = str(variant.answers["aws_region"])
        headers = sigv4_headers(host, "GET", variant.api_gateway_path, b"", region)
    return stream_with_http_client(
        server.host, server.port, "GET", variant.api_gateway_path, headers=headers
    )


def stream_with_http_client(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> StreamedResponse:
    """One request with http.client, reading the (chunked) body chunk by chunk as it arrives."""
    connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_SECONDS)
    try:
        started = time.monotonic()
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        lines: list[tuple[float, bytes]] = []
        received, pending = bytearray(), b""
        while chunk := response.read1(65536):
            received += chunk
            pending = split_lines(pending + chunk, time.monotonic() - started, lines)
        if pending:
            lines.append((time.monotonic() - started, pending))
        headers = {name.lower(): value for name, value in response.getheaders()}
        return StreamedResponse(response.status, headers, bytes(received), lines)
    finally:
        connection.close()


def stream_with_curl(args: Sequence[str]) -> tuple[list[tuple[float, bytes]], str]:
    """Run `curl -N ...`, stamping each output line on arrival; returns the lines and stderr."""
    started = time.monotonic()
    process = subprocess.Popen(
        ["curl", "--silent", "--show-error", "--max-time", str(REQUEST_TIMEOUT_SECONDS), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    lines = [(time.monotonic() - started, raw.rstrip(b"\r\n")) for raw in process.stdout]
    stderr = process.stderr.read().decode("utf-8", "replace")
    assert process.wait() == 0, f"curl {' '.join(args)} failed: {stderr}"
    return lines, stderr


def parse_curl_include(lines: list[tuple[float, bytes]]) -> StreamedResponse:
    """Split `curl -i` output into status, headers and body lines."""
    blank = next(i for i, (_, line) in enumerate(lines) if not line)
    status_line, *header_lines = [line.decode() for _, line in lines[:blank]]
    headers = {}
    for header in header_lines:
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    body_lines = lines[blank + 1 :]
    body = b"\n".join(line for _, line in body_lines)
    return StreamedResponse(int(status_line.split()[1]), headers, body, body_lines)


def assert_streamed(response: StreamedResponse) -> None:
    """The example's four lines, in order, the first well before the last."""
    # The raw stream's first line starts with the prelude and its delimiter: look past them.
    texts = [
        line.split(PRELUDE_DELIMITER)[-1].decode("utf-8", "replace") for _, line in response.lines
    ]
    assert texts[-len(EXAMPLE_LINES) :] == EXAMPLE_LINES, texts
    gap = response.arrival_of(EXAMPLE_LINES[-1]) - response.arrival_of(EXAMPLE_LINES[0])
    assert gap >= MIN_FIRST_TO_LAST_SECONDS, (
        f"the last line came {gap:.3f} s after the first (pause {LOCAL_PAUSE_MS} ms): buffered, "
        f"not streamed? arrivals: {response.lines}"
    )


def assert_example_headers(headers: dict[str, str]) -> None:
    assert headers.get("content-type", "").split(";")[0].strip() == "text/plain", headers
    assert headers.get("x-my-custom-header") == "streaming-example", headers


def assert_raw_stream(response: StreamedResponse) -> None:
    """What InvokeWithResponseStream gives: the JSON prelude, 8 NUL bytes, then the body."""
    assert response.status == 200, response
    prelude, delimiter, body = response.body.partition(PRELUDE_DELIMITER)
    assert delimiter, f"no prelude delimiter in the raw stream: {response.body!r}"
    parsed = json.loads(prelude)
    assert parsed["statusCode"] == 200, parsed
    assert {k.lower(): v for k, v in parsed["headers"].items()} == {
        k.lower(): v for k, v in EXAMPLE_HEADERS.items()
    }, parsed
    assert body.decode().splitlines() == EXAMPLE_LINES, body
    assert_streamed(response)


@per_variant
def test_generated_project_tests_pass(variant: Variant) -> None:
    result = run(
        variant.root, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        STREAM_PAUSE_MS="20",
    )  # fmt: skip
    assert result.returncode == 0, report(result)


@per_variant
def test_invoke_streams_the_raw_response_line_by_line(variant: Variant) -> None:
    with local_mode(variant) as server:
        response = stream_with_http_client(
            server.host, server.port, "POST", "/invoke", body=SEED_EVENT
        )
    assert_raw_stream(response)


@per_variant
def test_api_gateway_view_streams_status_headers_and_lines(variant: Variant) -> None:
    with local_mode(variant) as server:
        response = call_api_gateway_view(server, variant)
    assert response.status == 200, response
    assert_example_headers(response.headers)
    assert response.body.decode().splitlines() == EXAMPLE_LINES
    assert_streamed(response)


@per_variant
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_sees_each_line_as_it_arrives(variant: Variant) -> None:
    with local_mode(variant) as server:
        base = f"http://{server.host}:{server.port}"
        invoke_lines, _ = stream_with_curl(["-N", "--data", SEED_EVENT.decode(), f"{base}/invoke"])
        api_url = f"{base}{variant.api_gateway_path}"
        api_lines, _ = stream_with_curl(["-N", "-i", *variant.curl_signing, api_url])
    invoke_body = b"\n".join(line for _, line in invoke_lines)
    assert_raw_stream(StreamedResponse(200, {}, invoke_body, invoke_lines))
    response = parse_curl_include(api_lines)
    assert response.status == 200, api_lines
    assert_example_headers(response.headers)
    assert_streamed(response)


@per_variant
def test_ctrl_c_stops_local_mode_promptly_without_traceback(variant: Variant) -> None:
    with local_mode(variant) as server:
        served = call_api_gateway_view(server, variant)
        assert served.status == 200
        returncode = server.stop()
    assert returncode in (0, 130), f"exit code {returncode} after SIGINT\n{server.output()}"
    assert "Traceback" not in server.stderr(), server.output()


@per_variant
def test_api_gateway_view_wants_a_signature_exactly_when_auth_is_iam(variant: Variant) -> None:
    with local_mode(variant) as server:
        unsigned = call_api_gateway_view(server, variant, sign=False)
    if variant.signed:
        assert unsigned.status == 403, unsigned
        assert "message" in json.loads(unsigned.body), unsigned
    else:
        assert unsigned.status == 200, unsigned


@per_variant
def test_sam_validate_lint_passes(variant: Variant) -> None:
    output = sam_validate_lint(variant.root, str(variant.answers["aws_region"]))
    assert "is a valid SAM Template" in output


@per_variant
def test_ruff_check_passes(variant: Variant) -> None:
    result = run(variant.root, sys.executable, "-m", "ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, report(result)


@per_variant
def test_ruff_format_leaves_every_file_unchanged(variant: Variant) -> None:
    result = run(
        variant.root, sys.executable, "-m", "ruff", "format", "--check", "--diff", "--no-cache", "."
    )
    assert result.returncode == 0, report(result)


@per_variant
def test_pyproject_needs_python_311_and_nothing_else(variant: Variant) -> None:
    pyproject = tomllib.loads((variant.root / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["name"] == variant.answers["project_name"]
    assert project["requires-python"] == ">=3.11"
    assert project.get("dependencies", []) == []
    assert pyproject["tool"]["pytest"]["ini_options"]["pythonpath"] == ["."]
    isort = pyproject["tool"]["ruff"]["lint"]["isort"]
    assert sorted(isort["known-first-party"]) == sorted([variant.package_name, "lambda_streaming"])


@per_variant
def test_readme_shows_the_commands_for_these_answers(variant: Variant) -> None:
    readme = (variant.root / "README.md").read_text()
    assert f"python -m {variant.package_name}" in readme
    assert f"http://127.0.0.1:7000{variant.api_gateway_path}" in readme
    assert f"{variant.package_name}/handler.py" in readme
    signed = "--aws-sigv4" in readme
    assert signed == (variant.answers["auth"] == "IAM")


@per_variant
def test_readme_layout_names_only_files_that_exist(variant: Variant) -> None:
    readme = (variant.root / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1]
    paths = re.findall(r"^\| `([^`]+)` \|", layout, flags=re.MULTILINE)
    assert paths, "the README has no layout table"
    missing = [path for path in paths if not (variant.root / path).exists()]
    assert not missing, f"the README's layout names files the project lacks: {missing}"


def test_template_readme_documents_every_question() -> None:
    questions = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    asked = {
        name
        for name, spec in questions.items()
        if not name.startswith("_") and isinstance(spec, dict) and spec.get("when") is not False
    }
    readme = (TEMPLATE_ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)`[ †]* \|", readme, flags=re.MULTILINE))
    assert documented == asked


def load_dev_py() -> Any:
    spec = importlib.util.spec_from_file_location("dev", TEMPLATE_ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_dev_py_test_runs_the_tests_folder_in_parallel_by_variant() -> None:
    dev = load_dev_py()
    python = Path("python")
    assert dev.pytest_command(python, []) == [
        "python", "-m", "pytest", "-n", "auto", "--dist", "loadgroup", "tests",
    ]  # fmt: skip
    assert dev.pytest_command(python, ["-k", "readme"])[-3:] == ["-k", "readme", "tests"]


def test_dev_py_test_keeps_the_paths_and_worker_count_it_is_given() -> None:
    dev = load_dev_py()
    given = ["-n", "0", "tests/test_rendered_projects.py"]
    command = dev.pytest_command(Path("python"), given)
    assert command == ["python", "-m", "pytest", "--dist", "loadgroup", *given]


def test_dev_py_demo_replaces_only_an_untouched_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = load_dev_py()
    monkeypatch.setattr(dev, "DEMO_MANIFEST", tmp_path / ".rendered.sha256")
    project = tmp_path / "streaming-numbers"
    (project / "streaming_numbers").mkdir(parents=True)
    (project / "streaming_numbers" / "handler.py").write_text("# the example\n")
    assert dev.edits_since_render(project) == ["streaming_numbers/handler.py"]  # no record: keep

    record = "".join(f"{digest}  {name}\n" for name, digest in dev.demo_files(project).items())
    dev.DEMO_MANIFEST.write_text(record)
    (project / "streaming_numbers" / "__pycache__").mkdir()
    (project / "streaming_numbers" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"")
    assert dev.edits_since_render(project) == []  # caches are not edits

    (project / "streaming_numbers" / "handler.py").write_text("# my handler\n")
    (project / "notes.txt").write_text("mine\n")
    assert dev.edits_since_render(project) == ["notes.txt", "streaming_numbers/handler.py"]
