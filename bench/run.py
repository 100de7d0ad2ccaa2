"""The benchmark: the generated runtime side by side with the official Python runtime interface
client (awslambdaric, buffered) and a raw-socket ceiling, on the same emulated Runtime API, in
interleaved rounds. Not a test: it asserts nothing, it measures and reports.

Run it with ``python3 dev.py bench`` (which provides copier and awslambdaric in a pinned venv).
Writes ``bench/results/latest.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
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
samples: dict[str, list[float]] = defaultdict(list)


def record(name: str, value: float) -> None:
    samples[name].append(value)


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


def spawn_ours(project: Path, api: RuntimeApiEmulator) -> subprocess.Popen:
    """As Lambda starts the built function: <wrapper> <python> /var/runtime/bootstrap.py."""
    env = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(project),
        "_HANDLER": "bench_handlers.handle",
        "AWS_LAMBDA_LOG_LEVEL": "WARNING",
    }
    env.pop("PYTHONPATH", None)
    return subprocess.Popen(
        ["sh", str(project / "exec-wrapper"), PYTHON, "/var/runtime/bootstrap.py"],
        cwd="/",
        env=env,
        stdout=subprocess.DEVNULL,
    )


def spawn_official(project: Path, api: RuntimeApiEmulator) -> subprocess.Popen:
    env = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(project),
        "AWS_LAMBDA_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [PYTHON, "-m", "awslambdaric", "bench_buffered.handle"],
        cwd=project,
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


# ------------------------------------------------------------------------------------ scenarios


def cold_start(project: Path, contender: str) -> None:
    api = RuntimeApiEmulator()
    started = time.perf_counter()
    process = SPAWN[contender](project, api)
    try:
        first_next = api.wait_first_next()
        outcome = invoke(api, {})
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
        subprocess.run(command, check=True)
        record(f"cold.baseline.{name}_ms", (time.perf_counter() - started) * 1000)


def warm(project: Path, contender: str, count: int) -> None:
    api = RuntimeApiEmulator()
    process = SPAWN[contender](project, api)
    try:
        api.wait_first_next()
        for _ in range(50):
            invoke(api, {})
        cpu_before = cpu_seconds(process.pid)
        latencies = []
        started = time.perf_counter()
        for _ in range(count):
            began = time.perf_counter()
            invoke(api, {})
            latencies.append(time.perf_counter() - began)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(process.pid) - cpu_before
        latencies.sort()
        record(f"warm.{contender}.invocations_per_s", count / elapsed)
        record(f"warm.{contender}.p50_us", latencies[len(latencies) // 2] * 1e6)
        record(f"warm.{contender}.p99_us", latencies[int(len(latencies) * 0.99)] * 1e6)
        record(f"warm.{contender}.cpu_us_per_invocation", cpu / count * 1e6)
    finally:
        stop(process)
        api.close()


def throughput_ours(project: Path, size: int, writes: tuple[int, ...]) -> None:
    api = RuntimeApiEmulator()
    process = spawn_ours(project, api)
    try:
        api.wait_first_next()
        invoke(api, {"size": MB, "write": 65536})  # warm up the path
        for write in writes:
            outcome = invoke(api, {"size": size, "write": write})
            seconds = outcome.done - outcome.first_body_byte
            record(f"stream.ours.{write}.mb_per_s", outcome.body_bytes / seconds / MB)
            record(
                f"stream.ours.{write}.ttfb_ms",
                (outcome.first_body_byte - outcome.handed_out) * 1000,
            )
    finally:
        stop(process)
        api.close()


def throughput_ceiling(size: int, write: int) -> None:
    api = RuntimeApiEmulator()
    outcome = api.invoke(b"{}")
    subprocess.run(
        [PYTHON, str(BENCH / "raw_client.py"), api.address, str(write), str(size)], check=True
    )
    outcome.finished.wait(60)
    seconds = outcome.done - outcome.first_body_byte
    record(f"stream.ceiling.{write}.mb_per_s", outcome.body_bytes / seconds / MB)
    api.close()


def memory(project: Path, contender: str, size_mb: int) -> None:
    api = RuntimeApiEmulator()
    process = SPAWN[contender](project, api)
    try:
        api.wait_first_next()
        invoke(api, {"size": size_mb * MB, "write": 65536}, timeout=300)
        api.wait_first_next()
        time.sleep(0.2)  # back in /next: the invocation's memory has peaked
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
        **os.environ,
        "LOCAL_LAMBDA_PORT": "0",
        "_HANDLER": "bench_handlers.handle",
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
        "AWS_LAMBDA_LOG_LEVEL": "WARNING",
    }
    env.pop("AWS_SESSION_TOKEN", None)
    answers = json.loads(json.dumps(_answers(project)))
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
        received = bytearray()
        first_content = None
        total = 0
        sent_at = None
        while True:
            count = connection.recv_into(buffer)
            if not count:
                break
            now = time.time_ns()
            total += count
            if first_content is None:
                received += buffer[:count]
                end_of_head = received.find(b"\r\n\r\n")
                if end_of_head >= 0:
                    body = received[end_of_head + 4 :]
                    size_line_end = body.find(b"\r\n")
                    if size_line_end >= 0 and len(body) >= size_line_end + 2 + 20:
                        first_content = time.perf_counter()
                        sent_at = int(body[size_line_end + 2 : size_line_end + 22])
                        record("local.first_byte_after_write_ms", (now - sent_at) / 1e6)
            if buffer[:count].endswith(b"0\r\n\r\n"):
                break
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


def render_time(scratch: Path, rounds: int) -> None:
    for number in range(rounds):
        started = time.perf_counter()
        render(scratch / f"render-{number}")
        record("render.copier_copy_defaults_s", time.perf_counter() - started)


# ------------------------------------------------------------------------------------ report


def summary() -> dict[str, float]:
    return {name: statistics.median(values) for name, values in sorted(samples.items())}


def ratios(medians: dict[str, float]) -> dict[str, float]:
    def ratio(a: str, b: str) -> float:
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
        "warm.cpu_per_invocation.ours_over_official": ratio(
            "warm.ours.cpu_us_per_invocation", "warm.official.cpu_us_per_invocation"
        ),
        "stream.64k.ours_over_ceiling": ratio(
            "stream.ours.65536.mb_per_s", "stream.ceiling.65536.mb_per_s"
        ),
        "stream.1k.ours_over_minimal_loop": ratio(
            "stream.ours.1024.mb_per_s", "stream.ceiling.1024.mb_per_s"
        ),
        "memory.ours.200mb_minus_10mb_mb": medians["memory.ours.200mb.peak_rss_mb"]
        - medians["memory.ours.10mb.peak_rss_mb"],
        "local.over_runtime_64k": ratio("local.mb_per_s", "stream.ours.65536.mb_per_s"),
    }


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
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm-invocations", type=int, default=2000)
    parser.add_argument("--stream-mb", type=int, default=100)
    arguments = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        project = render(scratch / "project")
        shutil.copy(BENCH / "handlers_streaming.py", project / "bench_handlers.py")
        shutil.copy(BENCH / "handlers_buffered.py", project / "bench_buffered.py")
        stream_bytes = arguments.stream_mb * MB
        for contender in SPAWN:  # compile bytecode once, as a built artifact ships it
            cold_start(project, contender)
        samples.clear()
        for number in range(arguments.rounds):
            print(f"round {number + 1}/{arguments.rounds}", file=sys.stderr)
            order = list(SPAWN) if number % 2 == 0 else list(reversed(SPAWN))
            for contender in order:
                cold_start(project, contender)
            interpreter_baselines()
            for contender in order:
                warm(project, contender, arguments.warm_invocations)
            throughput_ours(project, stream_bytes, (1024, 65536))
            for write in (1024, 65536):
                throughput_ceiling(stream_bytes, write)
            local_mode(project, stream_bytes, 65536)
        for size_mb in (10, 100, 200):
            for contender in SPAWN:
                memory(project, contender, size_mb)
        render_time(scratch, 3)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    medians = summary()
    result = {
        "machine": machine(),
        "rounds": arguments.rounds,
        "medians": medians,
        "ratios": ratios(medians),
        "samples": samples,
    }
    out = BENCH / "results" / "latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {"machine": result["machine"], "medians": medians, "ratios": result["ratios"]}, indent=2
        )
    )


if __name__ == "__main__":
    main()
