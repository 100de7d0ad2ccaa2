"""The benchmark: the generated runtime side by side with the official Python runtime interface
client (awslambdaric, buffered) and raw-socket clients (the loopback ceiling, a minimal streaming
loop, the emulator's own round-trip ceiling), on the same emulated Runtime API, in interleaved
rounds. Not a test: it asserts nothing, it measures and reports.

Run it with ``python3 dev.py bench [--rounds N]`` (which provides copier and awslambdaric in a
pinned venv). Writes ``bench/results/latest.json`` (and a dated copy) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import signal
import socket
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from emulator import RuntimeApiEmulator

BENCH = Path(__file__).resolve().parent
TEMPLATE_ROOT = BENCH.parent
MB = 1_000_000
PYTHON = sys.executable
WRITES = (1024, 65536)
samples: dict[str, list[float]] = defaultdict(list)


def record(name: str, value: float) -> None:
    samples[name].append(value)


# Variables of this shell that Lambda does not set and that would change how Python starts
# (PYTHONDONTWRITEBYTECODE would make every start recompile what is not already compiled).
_DROPPED = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONSTARTUP")
BASE_ENV = {
    name: value
    for name, value in os.environ.items()
    if name not in _DROPPED and not name.startswith(("AWS_", "LAMBDA_", "_HANDLER"))
}
BASE_ENV["AWS_LAMBDA_LOG_LEVEL"] = "WARNING"


# ------------------------------------------------------------------------------------ processes


def render(destination: Path) -> Path:
    copier = Path(PYTHON).with_name("copier")
    subprocess.run(
        [
            *(copier, "copy", "--defaults", "--trust", "--quiet", "--vcs-ref", "HEAD"),
            *(TEMPLATE_ROOT, destination),
        ],
        check=True,
        capture_output=True,
    )
    return destination


def build_artifact(project: Path, artifact: Path) -> Path:
    """What ``sam build`` puts in the deployment package, with the benchmark's handlers beside
    it: the packages and the exec wrapper, bytecode compiled as the build compiles it
    (``compileall --invalidation-mode unchecked-hash``: no source stat at import), then read-only
    (as /var/task is; root can still write, but unchecked pycs are never rewritten)."""
    package = _answers(project)["package_name"]
    artifact.mkdir()
    for name in (package, "lambda_streaming"):
        shutil.copytree(
            project / name, artifact / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(project / "exec-wrapper", artifact / "exec-wrapper")
    shutil.copy(BENCH / "handlers_streaming.py", artifact / "bench_handlers.py")
    shutil.copy(BENCH / "handlers_buffered.py", artifact / "bench_buffered.py")
    compileall.compile_dir(
        artifact,
        quiet=1,
        invalidation_mode=compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    for path in sorted(artifact.rglob("*"), reverse=True):
        mode = 0o555 if path.is_dir() or path.name == "exec-wrapper" else 0o444
        path.chmod(mode)
    artifact.chmod(0o555)
    return artifact


def spawn_ours(artifact: Path, api: RuntimeApiEmulator) -> subprocess.Popen:
    """As Lambda starts the built function: <wrapper> <python> /var/runtime/bootstrap.py."""
    env = {
        **BASE_ENV,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(artifact),
        "_HANDLER": "bench_handlers.handle",
    }
    return subprocess.Popen(
        [str(artifact / "exec-wrapper"), PYTHON, "/var/runtime/bootstrap.py"],
        cwd="/",
        env=env,
        stdout=subprocess.DEVNULL,
    )


def spawn_official(artifact: Path, api: RuntimeApiEmulator) -> subprocess.Popen:
    """awslambdaric as a container image starts it: python -m awslambdaric module.function."""
    env = {
        **BASE_ENV,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(artifact),
    }
    return subprocess.Popen(
        [PYTHON, "-m", "awslambdaric", "bench_buffered.handle"],
        cwd=artifact,
        env=env,
        stdout=subprocess.DEVNULL,
    )


SPAWN: dict[str, Callable[[Path, RuntimeApiEmulator], subprocess.Popen]] = {
    "ours": spawn_ours,
    "official": spawn_official,
}


def stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def invoke(api: RuntimeApiEmulator, event: dict, timeout: float = 120):
    outcome = api.invoke(json.dumps(event).encode())
    if not outcome.finished.wait(timeout):
        raise TimeoutError(f"invocation {event} did not finish")
    return outcome


def raw_client(*arguments: object) -> str:
    command = [PYTHON, str(BENCH / "raw_client.py"), *map(str, arguments)]
    return subprocess.run(command, check=True, env=BASE_ENV, capture_output=True, text=True).stdout


# ------------------------------------------------------------------------------------ scenarios


def cold_start(artifact: Path, contender: str) -> None:
    """Process spawn → first /next, and → first complete response (a small invocation)."""
    api = RuntimeApiEmulator()
    outcome = api.invoke(b"{}")  # queued ahead: the first /next is answered at once
    started = time.perf_counter()
    process = SPAWN[contender](artifact, api)
    try:
        first_next = api.wait_first_next()
        if not outcome.finished.wait(30):
            raise TimeoutError(f"{contender} did not answer its first invocation")
        record(f"cold.{contender}.first_next_ms", (first_next - started) * 1000)
        record(f"cold.{contender}.first_response_ms", (outcome.done - started) * 1000)
    finally:
        stop(process)
        api.close()


def interpreter_baselines() -> None:
    for name, command in {
        "python_S": [PYTHON, "-S", "-c", "pass"],
        "python": [PYTHON, "-c", "pass"],
    }.items():
        started = time.perf_counter()
        subprocess.run(command, check=True, env=BASE_ENV)
        record(f"cold.baseline.{name}_ms", (time.perf_counter() - started) * 1000)


def warm(artifact: Path, contender: str, count: int) -> None:
    """``count`` small invocations back to back, queued ahead so that nothing but the runtime
    and the emulator is in the loop; latency is /next answered → response complete."""
    api = RuntimeApiEmulator()
    process = SPAWN[contender](artifact, api)
    try:
        api.wait_first_next()
        for _ in range(200):
            invoke(api, {})
        cpu_before = cpu_seconds(process.pid)
        outcomes = [api.invoke(b"{}") for _ in range(count)]
        if not outcomes[-1].finished.wait(120):
            raise TimeoutError(f"{contender}: warm invocations did not finish")
        cpu = cpu_seconds(process.pid) - cpu_before
        elapsed = outcomes[-1].done - outcomes[0].handed_out
        latencies = sorted(outcome.done - outcome.handed_out for outcome in outcomes)
        record(f"warm.{contender}.invocations_per_s", (count - 1) / elapsed)
        record(f"warm.{contender}.p50_us", latencies[len(latencies) // 2] * 1e6)
        record(f"warm.{contender}.p99_us", latencies[int(len(latencies) * 0.99)] * 1e6)
        record(f"warm.{contender}.cpu_us_per_invocation", cpu / count * 1e6)
    finally:
        stop(process)
        api.close()


def warm_ceiling(count: int) -> None:
    """The emulator's own ceiling: a raw client doing the same round trips with no runtime."""
    api = RuntimeApiEmulator()
    outcomes = [api.invoke(b"{}") for _ in range(count)]
    cpu = float(raw_client("warm", api.address, count))
    outcomes[-1].finished.wait(60)
    elapsed = outcomes[-1].done - outcomes[0].handed_out
    record("warm.ceiling.invocations_per_s", (count - 1) / elapsed)
    record("warm.ceiling.cpu_us_per_invocation", cpu / count * 1e6)
    api.close()


def throughput_ours(artifact: Path, size: int) -> None:
    api = RuntimeApiEmulator()
    process = spawn_ours(artifact, api)
    try:
        api.wait_first_next()
        invoke(api, {"size": MB, "write": 65536})  # warm up the path
        for write in WRITES:
            cpu_before = cpu_seconds(process.pid)
            outcome = invoke(api, {"size": size, "write": write})
            cpu = cpu_seconds(process.pid) - cpu_before
            record(f"stream.ours.{write}.cpu_us_per_write", cpu / (size // write) * 1e6)
            seconds = outcome.done - outcome.first_body_byte
            record(f"stream.ours.{write}.mb_per_s", outcome.body_bytes / seconds / MB)
            record(
                f"stream.ours.{write}.ttfb_ms",
                (outcome.first_body_byte - outcome.handed_out) * 1000,
            )
    finally:
        stop(process)
        api.close()


def throughput_raw(size: int, write: int, mode: str) -> None:
    """``preframed``: the loopback ceiling; ``framed``: a minimal plain-Python streaming loop."""
    api = RuntimeApiEmulator()
    outcome = api.invoke(b"{}")
    cpu = float(raw_client("stream", api.address, write, size, mode))
    outcome.finished.wait(60)
    seconds = outcome.done - outcome.first_body_byte
    name = "ceiling" if mode == "preframed" else "minimal_loop"
    record(f"stream.{name}.{write}.mb_per_s", outcome.body_bytes / seconds / MB)
    record(f"stream.{name}.{write}.cpu_us_per_write", cpu / (size // write) * 1e6)
    api.close()


def memory(artifact: Path, contender: str, size_mb: int) -> None:
    api = RuntimeApiEmulator()
    process = SPAWN[contender](artifact, api)
    try:
        api.wait_first_next()
        invoke(api, {"size": size_mb * MB, "write": 65536}, timeout=300)
        time.sleep(0.1)  # VmHWM is the high-water mark: the response is complete, so it peaked
        record(f"memory.{contender}.{size_mb}mb.peak_rss_mb", peak_rss_mb(process.pid))
    finally:
        stop(process)
        api.close()


def local_mode(project: Path, size: int, write: int) -> None:
    """A client on the API Gateway view of `python -m <package>` receiving `size` bytes."""
    sys.path.insert(0, str(project))
    from lambda_streaming.sigv4 import Credentials, SignedRequest, sign_request

    credentials = Credentials("AKIDBENCHMARK", "benchmark-secret")
    env = {
        **BASE_ENV,
        "LOCAL_LAMBDA_PORT": "0",
        "_HANDLER": "bench_handlers.handle",
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
    }
    answers = _answers(project)
    process = subprocess.Popen(
        [PYTHON, "-m", answers["package_name"]],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = None
        assert process.stdout is not None
        for line in process.stdout:
            if "/invoke" in line and "http://" in line:
                port = int(line.split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            if "Ctrl-C" in line:
                break
        path = f"/{answers['stage_name']}{answers['api_path']}"
        query = f"size={size}&stamp=1&write={write}"
        host = f"127.0.0.1:{port}"
        signed = sign_request(
            SignedRequest("GET", path, query, (("Host", host),)),
            credentials,
            region=answers["aws_region"],
            now=datetime.now(UTC),
        )
        head = f"GET {path}?{query} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in signed.headers
        )
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall((head + "\r\n").encode())
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        received = bytearray()
        first_content = None
        total = 0
        tail = b""
        while True:
            count = connection.recv_into(buffer)
            if not count:
                break
            now = time.time_ns()
            total += count
            if first_content is None:
                received += view[:count]
                end_of_head = received.find(b"\r\n\r\n")
                if end_of_head >= 0:
                    body = received[end_of_head + 4 :]
                    size_line_end = body.find(b"\r\n")
                    if size_line_end >= 0 and len(body) >= size_line_end + 2 + 20:
                        first_content = time.perf_counter()
                        sent_at = int(body[size_line_end + 2 : size_line_end + 22])
                        record("local.first_byte_after_write_ms", (now - sent_at) / 1e6)
            tail = (tail + bytes(view[max(0, count - 5) : count]))[-5:]
            if first_content is not None and tail == b"0\r\n\r\n":  # not the head's end
                break
        if first_content is None:
            raise RuntimeError(f"local mode answered no stamped body: {bytes(received[:400])!r}")
        seconds = time.perf_counter() - first_content
        record("local.mb_per_s", total / seconds / MB)
        connection.close()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            stop(process)


def _answers(project: Path) -> dict:
    answers = {}
    for line in (project / ".copier-answers.yml").read_text().splitlines():
        name, separator, value = line.partition(": ")
        if separator and not name.startswith(("#", " ")):
            answers[name] = value.strip().strip("'\"")
    return answers


def render_time(scratch: Path, number: int) -> None:
    started = time.perf_counter()
    render(scratch / f"render-{number}")
    record("render.copier_copy_defaults_s", time.perf_counter() - started)
    shutil.rmtree(scratch / f"render-{number}")


# ------------------------------------------------------------------------------------ report


def summary() -> dict[str, float]:
    return {name: statistics.median(values) for name, values in sorted(samples.items())}


def ratios(medians: dict[str, float]) -> dict[str, float]:
    def ratio(a: str, b: str) -> float:
        """The median of the ratios of samples taken side by side (the same round, one after
        the other), which cancels the machine's drifting load; else the ratio of the medians."""
        if len(samples[a]) == len(samples[b]):
            return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))
        return medians[a] / medians[b]

    return {
        "cold.first_next.ours_over_official": ratio(
            "cold.ours.first_next_ms", "cold.official.first_next_ms"
        ),
        "cold.first_response.ours_over_official": ratio(
            "cold.ours.first_response_ms", "cold.official.first_response_ms"
        ),
        "warm.invocations_per_s.ours_over_official": ratio(
            "warm.ours.invocations_per_s", "warm.official.invocations_per_s"
        ),
        "warm.invocations_per_s.ours_over_emulator_ceiling": ratio(
            "warm.ours.invocations_per_s", "warm.ceiling.invocations_per_s"
        ),
        "warm.cpu_per_invocation.ours_over_official": ratio(
            "warm.ours.cpu_us_per_invocation", "warm.official.cpu_us_per_invocation"
        ),
        "warm.cpu_per_invocation.ours_over_raw_floor": ratio(
            "warm.ours.cpu_us_per_invocation", "warm.ceiling.cpu_us_per_invocation"
        ),
        "stream.64k.ours_over_ceiling": ratio(
            "stream.ours.65536.mb_per_s", "stream.ceiling.65536.mb_per_s"
        ),
        "stream.64k.minimal_loop_over_ceiling": ratio(
            "stream.minimal_loop.65536.mb_per_s", "stream.ceiling.65536.mb_per_s"
        ),
        "stream.1k.ours_over_minimal_loop": ratio(
            "stream.ours.1024.mb_per_s", "stream.minimal_loop.1024.mb_per_s"
        ),
        "stream.1k.cpu_per_write.ours_over_minimal_loop": ratio(
            "stream.ours.1024.cpu_us_per_write", "stream.minimal_loop.1024.cpu_us_per_write"
        ),
        "memory.ours.200mb_minus_10mb_mb": medians["memory.ours.200mb.peak_rss_mb"]
        - medians["memory.ours.10mb.peak_rss_mb"],
        "local.over_runtime_64k": ratio("local.mb_per_s", "stream.ours.65536.mb_per_s"),
    }


TARGETS = {
    "cold.first_next.ours_over_official": ("<=", 0.6),
    "warm.invocations_per_s.ours_over_official": (">=", 1.4),
    "warm.cpu_per_invocation.ours_over_official": ("<=", 0.5),
    "stream.64k.ours_over_ceiling": (">=", 0.65),
    "stream.1k.cpu_per_write.ours_over_minimal_loop": ("<=", 1.0),
    "memory.ours.200mb_minus_10mb_mb": ("<=", 2.0),
    "local.over_runtime_64k": (">=", 0.5),
}


def verdicts(ratio_values: dict[str, float]) -> dict[str, str]:
    out = {}
    for name, (sense, bound) in TARGETS.items():
        value = ratio_values[name]
        met = value <= bound if sense == "<=" else value >= bound
        out[name] = f"{'met' if met else 'MISSED'} ({value:.2f}, target {sense} {bound})"
    return out


def markdown_table(medians: dict[str, float], ratio_values: dict[str, float]) -> str:
    """The README's table: each scenario's medians, the ratio in the same run, the target."""
    m, r = medians, ratio_values

    def verdict(name: str) -> str:
        sense, bound = TARGETS[name]
        value = r[name]
        met = value <= bound if sense == "<=" else value >= bound
        return f"{sense} {bound}: {'met' if met else '**missed**'}"

    rows = [
        (
            "Cold start, spawn → first `/next`",
            f"{m['cold.ours.first_next_ms']:.1f} ms",
            f"{m['cold.official.first_next_ms']:.1f} ms",
            f"{r['cold.first_next.ours_over_official']:.2f}",
            verdict("cold.first_next.ours_over_official"),
        ),
        (
            "Cold start, spawn → first response complete",
            f"{m['cold.ours.first_response_ms']:.1f} ms",
            f"{m['cold.official.first_response_ms']:.1f} ms",
            f"{r['cold.first_response.ours_over_official']:.2f}",
            "",
        ),
        (
            "Bare interpreter: `python -S -c pass` / `python -c pass`",
            f"{m['cold.baseline.python_S_ms']:.1f} ms",
            f"{m['cold.baseline.python_ms']:.1f} ms",
            "",
            "",
        ),
        (
            "Warm invocations/s",
            f"{m['warm.ours.invocations_per_s']:.0f}",
            f"{m['warm.official.invocations_per_s']:.0f}",
            f"{r['warm.invocations_per_s.ours_over_official']:.2f}",
            verdict("warm.invocations_per_s.ours_over_official"),
        ),
        (
            "Warm invocations/s, ours vs the emulator's ceiling for a streamed response",
            f"{m['warm.ours.invocations_per_s']:.0f}",
            f"{m['warm.ceiling.invocations_per_s']:.0f}",
            f"{r['warm.invocations_per_s.ours_over_emulator_ceiling']:.2f}",
            "",
        ),
        (
            "Warm latency p50 / p99",
            f"{m['warm.ours.p50_us']:.0f} / {m['warm.ours.p99_us']:.0f} µs",
            f"{m['warm.official.p50_us']:.0f} / {m['warm.official.p99_us']:.0f} µs",
            "",
            "",
        ),
        (
            "Runtime CPU per warm invocation",
            f"{m['warm.ours.cpu_us_per_invocation']:.0f} µs",
            f"{m['warm.official.cpu_us_per_invocation']:.0f} µs",
            f"{r['warm.cpu_per_invocation.ours_over_official']:.2f}",
            verdict("warm.cpu_per_invocation.ours_over_official"),
        ),
        (
            "CPU per warm invocation, raw-socket floor for a streamed response",
            "",
            f"{m['warm.ceiling.cpu_us_per_invocation']:.0f} µs",
            f"{r['warm.cpu_per_invocation.ours_over_raw_floor']:.2f}",
            "",
        ),
        (
            "Stream 100 MB in 64 KB writes (vs the loopback ceiling)",
            f"{m['stream.ours.65536.mb_per_s']:.0f} MB/s",
            f"{m['stream.ceiling.65536.mb_per_s']:.0f} MB/s",
            f"{r['stream.64k.ours_over_ceiling']:.2f}",
            verdict("stream.64k.ours_over_ceiling"),
        ),
        (
            "Stream 100 MB in 1 KB writes (vs a minimal Python loop)",
            f"{m['stream.ours.1024.mb_per_s']:.0f} MB/s",
            f"{m['stream.minimal_loop.1024.mb_per_s']:.0f} MB/s",
            f"{r['stream.1k.ours_over_minimal_loop']:.2f}",
            "",
        ),
        (
            "CPU per 1 KB write (vs a minimal Python loop)",
            f"{m['stream.ours.1024.cpu_us_per_write']:.2f} µs",
            f"{m['stream.minimal_loop.1024.cpu_us_per_write']:.2f} µs",
            f"{r['stream.1k.cpu_per_write.ours_over_minimal_loop']:.2f}",
            verdict("stream.1k.cpu_per_write.ours_over_minimal_loop"),
        ),
        (
            "Time to first byte (64 KB / 1 KB runs)",
            f"{m['stream.ours.65536.ttfb_ms']:.2f} / {m['stream.ours.1024.ttfb_ms']:.2f} ms",
            "",
            "",
            "",
        ),
        (
            "Peak RSS streaming 10 / 100 / 200 MB",
            " / ".join(f"{m[f'memory.ours.{s}mb.peak_rss_mb']:.1f}" for s in (10, 100, 200))
            + " MB",
            " / ".join(f"{m[f'memory.official.{s}mb.peak_rss_mb']:.0f}" for s in (10, 100, 200))
            + " MB",
            f"{r['memory.ours.200mb_minus_10mb_mb']:+.2f} MB",
            verdict("memory.ours.200mb_minus_10mb_mb").replace("2.0", "2 MB"),
        ),
        (
            "Local mode end to end, API Gateway view, 100 MB (vs the runtime's 64 KB stream)",
            f"{m['local.mb_per_s']:.0f} MB/s",
            f"{m['stream.ours.65536.mb_per_s']:.0f} MB/s",
            f"{r['local.over_runtime_64k']:.2f}",
            verdict("local.over_runtime_64k"),
        ),
        (
            "Local mode, first byte at the client after the handler's write",
            f"{m['local.first_byte_after_write_ms']:.1f} ms",
            "",
            "",
            "a few ms",
        ),
        ("`copier copy --defaults`", f"{m['render.copier_copy_defaults_s']:.2f} s", "", "", ""),
    ]
    lines = [
        "| scenario | ours | reference | ratio | target |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in rows),
    ]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory_gib": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f}",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_end": " ".join(f"{load:.2f}" for load in os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-starts", type=int, default=5, help="per contender and round")
    parser.add_argument("--warm-invocations", type=int, default=3000)
    parser.add_argument("--stream-mb", type=int, default=100)
    parser.add_argument(
        "--only",
        help="comma-separated scenarios (cold,warm,stream,memory,local,render); default all",
    )
    parser.add_argument("--output", type=Path, default=BENCH / "results" / "latest.json")
    arguments = parser.parse_args()
    only = set(arguments.only.split(",")) if arguments.only else None

    def wanted(scenario: str) -> bool:
        return only is None or scenario in only

    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        project = render(scratch / "project")
        shutil.copy(BENCH / "handlers_streaming.py", project / "bench_handlers.py")
        artifact = build_artifact(project, scratch / "artifact")
        stream_bytes = arguments.stream_mb * MB
        for contender in SPAWN:  # warm the page cache: the first spawn reads from disk
            cold_start(artifact, contender)
        samples.clear()
        for number in range(arguments.rounds):
            print(f"round {number + 1}/{arguments.rounds}", file=sys.stderr, flush=True)
            order = list(SPAWN) if number % 2 == 0 else list(reversed(SPAWN))
            if wanted("cold"):
                for _ in range(arguments.cold_starts):
                    for contender in order:
                        cold_start(artifact, contender)
                    interpreter_baselines()
            if wanted("warm"):
                for contender in order:
                    warm(artifact, contender, arguments.warm_invocations)
                warm_ceiling(arguments.warm_invocations)
            if wanted("stream"):
                for _ in range(2):  # side by side, twice: each ratio pairs neighbours
                    throughput_ours(artifact, stream_bytes)
                    for write in WRITES:
                        throughput_raw(stream_bytes, write, "framed")
                    throughput_raw(stream_bytes, 65536, "preframed")
            if wanted("local"):
                local_mode(project, stream_bytes, 65536)
            if wanted("memory"):
                for size_mb in (10, 100, 200):
                    for contender in order:
                        memory(artifact, contender, size_mb)
            if wanted("render"):
                render_time(scratch, number)
    finally:
        for path in scratch.rglob("*"):  # the artifact is read-only
            if path.is_dir():
                path.chmod(stat.S_IRWXU)
        scratch.chmod(stat.S_IRWXU)
        shutil.rmtree(scratch, ignore_errors=True)
    medians = summary()
    result: dict[str, object] = {"machine": machine(), "rounds": arguments.rounds}
    result["medians"] = medians
    if only is None:
        result["ratios"] = ratio_values = ratios(medians)
        result["targets"] = verdicts(ratio_values)
    result["samples"] = samples
    out = arguments.output
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    shown = {key: value for key, value in result.items() if key != "samples"}
    print(json.dumps(shown, indent=2))
    if only is None:
        dated = out.with_name(f"{datetime.now(UTC):%Y-%m-%dT%H%M}Z.json")
        dated.write_text(out.read_text())
        print(markdown_table(medians, ratio_values))


if __name__ == "__main__":
    main()
