#!/usr/bin/env python3
"""The README's quick start: two commands for a fresh machine with Python 3.11+, git and curl.

    python3 dev.py demo          render the defaults into demo/streaming-numbers, start its local
                                 mode, curl it and show each line as it arrives, then stop it
    python3 dev.py test [ARGS]   run the template's whole test suite; ARGS go to pytest
    python3 dev.py bench [ARGS]  run the benchmark (bench/run.py; ARGS such as --rounds 5 go to it):
                                 our runtime against the official client and the loopback ceiling

`demo` and `test` create (or reuse) `.venv` with the pinned tools of requirements-dev.txt; `test`
also makes `.venv-sam` with the pinned AWS SAM CLI of requirements-sam.txt (its own venv: its pins
clash with checkov's), where the tests find `sam`; `bench` makes `.venv-bench` from
bench/requirements.txt (copier and awslambdaric), so the benchmark never shares, or changes, the
test suite's tools. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

MIN_PYTHON = (3, 11)
ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PinnedVenv:
    """A venv made from one requirements file; a changed pin reinstalls it."""

    path: Path
    requirements: Path

    @property
    def python(self) -> Path:
        return self.path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    @property
    def stamp(self) -> Path:
        """The hash of the requirements the venv was last installed from."""
        return self.path / f".{self.requirements.stem}.sha256"


# The template's test tools, and the AWS SAM CLI apart from them: aws-sam-cli pins boto3 and click
# exactly, at versions checkov's own pins exclude, so the two cannot share one venv.
DEV_VENV = PinnedVenv(ROOT / ".venv", ROOT / "requirements-dev.txt")
SAM_VENV = PinnedVenv(ROOT / ".venv-sam", ROOT / "requirements-sam.txt")
BENCH_VENV = PinnedVenv(ROOT / ".venv-bench", ROOT / "bench" / "requirements.txt")

DEMO_DESTINATION = Path("demo") / "streaming-numbers"
DEMO_PACKAGE = "streaming_numbers"
PREFERRED_PORT = 7000
# Throwaway keys for local mode's SigV4 check (auth IAM): it verifies signatures against the keys in
# its environment, so the demo gives it these and signs with them. Your own keys are never used.
DEMO_ACCESS_KEY_ID = "LOCALDEMOACCESSKEY"
DEMO_SECRET_ACCESS_KEY = "local-demo-secret-not-a-real-key"
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0

# Local mode prints its invoke URL on startup, e.g. "curl -N ... http://127.0.0.1:7000/invoke".
INVOKE_URL = re.compile(r"http://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s/:]+):(?P<port>\d+)/invoke\b")
# Environment that would change what the demo runs (Lambda mode, another handler, another port).
LOCAL_MODE_VARIABLES = (
    "AWS_LAMBDA_RUNTIME_API",
    "_HANDLER",
    "LOCAL_LAMBDA_HOST",
    "LOCAL_LAMBDA_PORT",
    "LOCAL_LAMBDA_INVOCATION_ENDPOINT",
    "STREAM_PAUSE_MS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)


class DevError(Exception):
    """A problem the user can fix; reported as one message, without a traceback."""


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def interpreter_works(python: Path) -> bool:
    """True when `python` starts and is 3.11+ (a venv can outlive the Python it came from)."""
    if not python.exists():
        return False
    check = f"import sys; sys.exit(sys.version_info < {MIN_PYTHON!r})"
    try:
        return (
            subprocess.run([str(python), "-c", check], capture_output=True, check=False).returncode
            == 0
        )
    except OSError:
        return False


def ensure_venv(pinned: PinnedVenv = DEV_VENV) -> Path:
    """Create the venv if needed and install the pins into it when its requirements changed."""
    python = pinned.python
    if not interpreter_works(python):
        action = "Recreating" if pinned.path.exists() else "Creating"
        say(f"{action} {pinned.path.name} with {sys.executable}")
        try:
            venv.EnvBuilder(clear=True, with_pip=True, symlinks=os.name != "nt").create(pinned.path)
        except (OSError, subprocess.CalledProcessError) as error:
            raise DevError(
                f"could not create {pinned.path}: {error}\n"
                "On Debian or Ubuntu, install the venv module first: apt-get install python3-venv"
            ) from error
    digest = hashlib.sha256(pinned.requirements.read_bytes()).hexdigest()
    installed = pinned.stamp.read_text().strip() if pinned.stamp.exists() else ""
    if installed != digest:
        name = pinned.requirements.name
        say(f"Installing the pinned tools of {name} into {pinned.path.name}")
        command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
        result = subprocess.run([*command, "--requirement", str(pinned.requirements)], check=False)
        if result.returncode != 0:
            raise DevError(f"pip could not install {name} (exit code {result.returncode})")
        pinned.stamp.write_text(digest + "\n")
    return python


def require_tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DevError(f"{name} is not installed (or not on PATH): {why}")
    return path


def pytest_command(python: Path, user_args: Sequence[str]) -> list[str]:
    """`python -m pytest`, in parallel by variant group, on tests/ unless the user named paths."""
    command = [str(python), "-m", "pytest"]
    no_xdist = "no:xdist" in user_args
    if not no_xdist and not any(_names_worker_count(arg) for arg in user_args):
        command += ["-n", "auto"]
    if not no_xdist and not any(arg.startswith("--dist") for arg in user_args):
        command += ["--dist", "loadgroup"]  # one worker per @pytest.mark.xdist_group (variant)
    names_a_path = any(
        not arg.startswith("-") and (ROOT / arg.split("::")[0]).exists() for arg in user_args
    )
    return [*command, *user_args, *([] if names_a_path else ["tests"])]


def _names_worker_count(arg: str) -> bool:
    return arg.startswith("--numprocesses") or (arg.startswith("-n") and not arg.startswith("--"))


def command_test(user_args: Sequence[str]) -> int:
    python = ensure_venv(DEV_VENV)
    ensure_venv(SAM_VENV)  # tests/conftest.py finds `sam` there
    command = pytest_command(python, user_args)
    say(" ".join(command))
    process = subprocess.Popen(command, cwd=ROOT)
    # Let pytest handle Ctrl-C itself (it prints what ran so far); just wait for it to finish.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


# What the demo rendered, file by file, so that a later demo replaces only an untouched render.
DEMO_MANIFEST = ROOT / "demo" / ".rendered.sha256"
# Written by running the project (its tests, Python), not by the user.
DEMO_SCRATCH = {"__pycache__", ".pytest_cache", ".ruff_cache", ".aws-sam"}


def demo_files(project: Path) -> dict[str, str]:
    """Each file of the rendered project (outside caches and build output) with its SHA-256."""
    files = {}
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if path.is_file() and not DEMO_SCRATCH.intersection(relative.parts):
            files[relative.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def edits_since_render(project: Path) -> list[str]:
    """Files of the demo that differ from what the demo rendered (all of them when unknown)."""
    if not DEMO_MANIFEST.exists():
        return sorted(demo_files(project))
    rendered = dict(line.split("  ", 1)[::-1] for line in DEMO_MANIFEST.read_text().splitlines())
    current = demo_files(project)
    return sorted(name for name in rendered.keys() | current.keys()
                  if rendered.get(name) != current.get(name))  # fmt: skip


def render_demo(python: Path) -> Path:
    """Render the template's defaults into demo/streaming-numbers, replacing an untouched demo."""
    destination = ROOT / DEMO_DESTINATION
    if destination.exists():
        edited = edits_since_render(destination)
        if edited:
            shown = ", ".join(edited[:3]) + (", ..." if len(edited) > 3 else "")
            raise DevError(
                f"{DEMO_DESTINATION} has changes since the demo rendered it ({shown}); the demo "
                "replaces that folder, so move it elsewhere to keep your work, or delete it, "
                "then run the demo again"
            )
        shutil.rmtree(destination)
    command = [str(python), "-m", "copier", "copy", "--defaults", "--trust", "--quiet"]
    if (ROOT / ".git").exists():
        command += ["--vcs-ref", "HEAD"]  # HEAD plus uncommitted changes of this checkout
    command += [".", str(DEMO_DESTINATION)]
    say(f"Rendering the template's defaults into {DEMO_DESTINATION}")
    if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
        raise DevError("copier could not render the template (see its message above)")
    if not (destination / DEMO_PACKAGE).is_dir():
        raise DevError(
            f"the rendered project has no {DEMO_PACKAGE}/ package: the template is incomplete"
        )
    manifest = "".join(f"{digest}  {name}\n" for name, digest in demo_files(destination).items())
    DEMO_MANIFEST.write_text(manifest)
    return destination


def read_answers(project: Path) -> dict[str, str]:
    """The top-level answers of .copier-answers.yml (plain `name: value` lines; no YAML parser)."""
    answers = {}
    for line in (project / ".copier-answers.yml").read_text().splitlines():
        if match := re.fullmatch(r"(\w+): *(.*?) *", line):
            answers[match[1]] = match[2].strip("'\"")
    return answers


def pick_port() -> int:
    """7000 (local mode's default) when it is free, otherwise a free port the system chooses."""
    for port in (PREFERRED_PORT, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise DevError("no free TCP port on 127.0.0.1")


@dataclass
class LocalMode:
    """A running `python -m streaming_numbers`, with its output drained by background threads."""

    process: subprocess.Popen[bytes]
    stdout_lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    stderr_chunks: list[bytes] = field(default_factory=list)
    later_output: list[str] = field(default_factory=list)

    def pump(self) -> None:
        assert self.process.stdout is not None and self.process.stderr is not None
        stdout, stderr = self.process.stdout, self.process.stderr

        def read_stdout() -> None:
            for raw in iter(stdout.readline, b""):
                self.stdout_lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
            self.stdout_lines.put(None)

        def read_stderr() -> None:
            for chunk in iter(lambda: stderr.read1(65536), b""):
                self.stderr_chunks.append(chunk)

        for target in (read_stdout, read_stderr):
            threading.Thread(target=target, daemon=True).start()

    def wait_for_invoke_url(self) -> tuple[str, int]:
        """Echo the startup banner until it names the invoke URL; return its host and port."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.stdout_lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise DevError(f"local mode exited before it was ready.\n{self.diagnostics()}")
            print(f"    {line}", flush=True)
            if match := INVOKE_URL.search(line):
                self._echo_rest_of_banner()
                return match["host"], int(match["port"])
        raise DevError(
            f"local mode printed no invoke URL within {STARTUP_TIMEOUT_SECONDS:.0f} s.\n"
            f"{self.diagnostics()}"
        )

    def _echo_rest_of_banner(self) -> None:
        while True:
            try:
                line = self.stdout_lines.get(timeout=0.3)
            except queue.Empty:
                return
            if line is None:
                return
            print(f"    {line}", flush=True)

    def diagnostics(self) -> str:
        while True:
            try:
                line = self.stdout_lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.later_output.append(line)
        stderr = b"".join(self.stderr_chunks).decode("utf-8", "replace").rstrip()
        stdout = "\n".join(self.later_output).rstrip()
        return (
            f"--- local mode stdout ---\n{stdout or '(nothing)'}\n"
            f"--- local mode stderr ---\n{stderr or '(nothing)'}"
        )

    def stop(self) -> None:
        """Ctrl-C, as a user would; kill only if it does not exit within the bound."""
        if self.process.poll() is not None:
            return
        if os.name == "nt":
            self.process.terminate()
        else:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise DevError(
                f"local mode did not stop within {STOP_TIMEOUT_SECONDS:.0f} s of Ctrl-C; killed it"
            ) from None


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
def local_mode(project: Path, port: int) -> Iterator[LocalMode]:
    environment = {k: v for k, v in os.environ.items() if k not in LOCAL_MODE_VARIABLES}
    environment.pop("PYTHONPATH", None)
    environment.update(
        LOCAL_LAMBDA_PORT=str(port),
        PYTHONUNBUFFERED="1",
        AWS_ACCESS_KEY_ID=DEMO_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=DEMO_SECRET_ACCESS_KEY,
    )
    with sigint_enabled_for_children():
        process = subprocess.Popen(
            [sys.executable, "-m", DEMO_PACKAGE],
            cwd=project,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own session: a Ctrl-C in this terminal reaches dev.py, which stops it cleanly.
            start_new_session=os.name != "nt",
        )
    server = LocalMode(process)
    server.pump()
    try:
        yield server
    finally:
        server.stop()


def show_line(started: float, raw: bytes) -> str:
    """One received line, stamped with the time since the request started; control bytes escaped."""
    text = raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "backslashreplace")
    visible = "".join(c if c.isprintable() or c == "\t" else f"\\x{ord(c):02x}" for c in text)
    line = f"[+{time.monotonic() - started:.2f}s] {visible}"
    print(line, flush=True)
    return visible


def stream_with_curl(curl_args: Sequence[str]) -> list[str]:
    """Run curl, printing each line the moment it arrives; return the lines (escaped)."""
    command = ["curl", "--silent", "--show-error", *curl_args]
    print(f"\n$ {' '.join(_shell_quote(arg) for arg in command)}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    lines = [show_line(started, raw) for raw in iter(process.stdout.readline, b"")]
    if (code := process.wait()) != 0:
        raise DevError(f"curl failed with exit code {code}")
    return lines


def _shell_quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def command_demo() -> int:
    require_tool("git", "Copier renders the template from this git checkout")
    require_tool("curl", "the demo calls local mode with curl -N, as you would")
    python = ensure_venv()
    project = render_demo(python)
    say(f"Starting local mode: python -m {DEMO_PACKAGE} (in {DEMO_DESTINATION})")
    with local_mode(project, pick_port()) as server:
        host, port = server.wait_for_invoke_url()
        base = f"http://{host}:{port}"
        try:
            print(
                "\nPOST /invoke answers with the raw stream, as Lambda's InvokeWithResponseStream"
                " does:\nthe JSON prelude, eight NUL bytes (shown as \\x00), then the body.",
                flush=True,
            )
            stream_with_curl(["-N", "--data", '"this is not used"', f"{base}/invoke"])
            print(
                "\nThe API Gateway view turns the prelude into the HTTP status and headers and"
                " streams the body chunked:",
                flush=True,
            )
            answers = read_answers(project)
            api_url = (
                f"{base}/{answers.get('stage_name', 'prod')}{answers.get('api_path', '/stream')}"
            )
            signing = []
            if answers.get("auth", "IAM") == "IAM":
                region = answers.get("aws_region", "us-east-1")
                signing = ["--aws-sigv4", f"aws:amz:{region}:execute-api"]
                signing += ["--user", f"{DEMO_ACCESS_KEY_ID}:{DEMO_SECRET_ACCESS_KEY}"]
                print(
                    "auth is IAM, so local mode checks SigV4 signatures as API Gateway does; the"
                    " demo signs\nwith the throwaway keys it gave local mode.",
                    flush=True,
                )
            lines = stream_with_curl(["-N", "-i", *signing, api_url])
        except DevError as error:
            raise DevError(f"{error}\n{server.diagnostics()}") from None
        status = lines[0].split() if lines else []
        if len(status) < 2 or status[1] != "200":
            raise DevError(
                f"the API Gateway view answered {lines[:1]}, not 200\n{server.diagnostics()}"
            )
        say("Stopping local mode (Ctrl-C)")
    print(
        "\nDone. The rendered project is in demo/streaming-numbers; run it yourself with:\n"
        f"    cd {DEMO_DESTINATION}\n"
        f"    AWS_ACCESS_KEY_ID={DEMO_ACCESS_KEY_ID} "
        f"AWS_SECRET_ACCESS_KEY={DEMO_SECRET_ACCESS_KEY} python3 -m {DEMO_PACKAGE}\n"
        "(any keys do: local mode checks signatures against the keys it is given; sign curl\n"
        "with the same, as above). For a project of your own, use `copier copy` (README).\n"
        "Run the template's tests with:\n"
        "    python3 dev.py test",
        flush=True,
    )
    return 0


def command_bench(user_args: Sequence[str]) -> int:
    """The benchmark: not a test, never part of the suite; it measures, prints and saves."""
    require_tool("git", "Copier renders the template from this git checkout")
    python = ensure_venv(BENCH_VENV)
    command = [str(python), str(ROOT / "bench" / "run.py"), *user_args]
    say(" ".join(command))
    return subprocess.run(command, cwd=ROOT, check=False).returncode


USAGE = """usage: python3 dev.py demo
       python3 dev.py test [PYTEST ARGS...]
       python3 dev.py bench [--rounds N] [--only cold,warm,stream,memory,local,render]"""

COMMANDS = {"test": command_test, "bench": command_bench}  # and demo, which takes no arguments


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("demo", *COMMANDS) or (args[0] == "demo" and args[1:]):
        print(f"{__doc__.strip()}\n\n{USAGE}", file=sys.stderr)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    if sys.version_info < MIN_PYTHON:
        wanted = ".".join(map(str, MIN_PYTHON))
        print(f"dev.py: error: needs Python {wanted}+, this is {sys.version.split()[0]}")
        return 2
    try:
        return command_demo() if args[0] == "demo" else COMMANDS[args[0]](args[1:])
    except DevError as error:
        print(f"dev.py: error: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\ndev.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
