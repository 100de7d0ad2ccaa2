"""`sam build` with the pinned SAM CLI, no Docker; the artifact zipped as `sam deploy` zips it, then
unzipped and started the way Lambda's managed Python runtime starts it.

Two variants, since the artifact differs by architecture and Python version: the defaults (arm64,
Python 3.13) and x86_64 on Python 3.12. Each is built once per session as rendered, and once more
with a user's requirements (a pure-Python package and one with platform wheels). `make` runs pip
with the Python running these tests. The defaults are built as on a machine that has python3.13
(when this one has it: then the build ships bytecode), x86_64-py312 as on one that has only the
Python running the tests (no bytecode, unless that is 3.12): so both paths are taken.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from conftest import SAM_VENV, TEMPLATE_ROOT, render, sam_cli, sam_environment
from test_rendered_projects import EXAMPLE_HEADERS, EXAMPLE_LINES, PRELUDE_DELIMITER, python_for
from test_sam_template import CloudFormationLoader

BUILD_VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "x86_64-py312": {"architecture": "x86_64", "python_version": "3.12"},
}
# The variants built as on a machine with python<python_version> on PATH (when this one has it);
# the others as on one without it.
WITH_TARGET_PYTHON = {"defaults"}
# A user's requirements.txt: one pure-Python package, one with compiled (platform) wheels.
USER_REQUIREMENTS = "six==1.17.0\nMarkupSafe==3.0.3\n"
# ELF e_machine of each Lambda architecture (the .so files pip must pick).
ELF_MACHINE = {"arm64": 183, "x86_64": 62}
WHEEL_ARCH = {"arm64": "aarch64", "x86_64": "x86_64"}
# A pyc's flags word (PEP 552): bit 0 hash-based, bit 1 check the source. Unchecked-hash is 0b01.
UNCHECKED_HASH_FLAGS = 0b01
LAMBDA_START_TIMEOUT_SECONDS = 60.0
PAUSE_MS = "20"


@dataclass(frozen=True)
class Build:
    """A rendered project after `sam build`: the function's artifact folder and what sam printed."""

    name: str
    project: Path
    answers: dict[str, Any]
    output: str
    bytecode_python: str | None  # the Python that compiled the shipped bytecode; None: none shipped

    @property
    def function_id(self) -> str:
        return str(self.answers["function_name"])

    @property
    def package_name(self) -> str:
        return str(self.answers["package_name"])

    @property
    def python_tag(self) -> str:
        return "cpython-" + str(self.answers["python_version"]).replace(".", "")

    @property
    def artifact(self) -> Path:
        return self.project / ".aws-sam" / "build" / self.function_id

    @property
    def built_template(self) -> dict[str, Any]:
        return load_template(self.project / ".aws-sam" / "build" / "template.yaml")


# `builds(variant, with_requirements=False)`, `task_roots(variant)`, `lambda_starts(variant)`.
Builds = Callable[..., Build]
TaskRoots = Callable[[str], tuple[Path, Path]]


def load_template(path: Path) -> dict[str, Any]:
    """A SAM template as parsed YAML, CloudFormation's short tags read as their long form."""
    return yaml.load(path.read_text(), CloudFormationLoader)


per_build = pytest.mark.parametrize(
    "variant",
    [
        pytest.param(name, id=name, marks=pytest.mark.xdist_group(f"build-{name}"))
        for name in BUILD_VARIANTS
    ],
)


def sam_build(
    project: Path, answers: dict[str, Any], tmp: Path, offer_target_python: bool
) -> tuple[str, str | None]:
    """`sam build` in `project`; returns its output and the Python that compiled the bytecode."""
    version = str(answers["python_version"])
    interpreter = python_for(version)  # this very Python when the machine has no <version>
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    bytecode_python = sys.executable if running == version else None  # PYTHON is the target
    bin_dir = tmp / "bin"  # first on PATH: decides what `python<version>` is for the Makefile
    bin_dir.mkdir()
    if offer_target_python and interpreter != sys.executable:
        # This machine has Python <version>: offer it as python<version>, as an install would.
        (bin_dir / f"python{version}").symlink_to(interpreter)
        bytecode_python = interpreter
    else:  # a machine without it, whatever else is on PATH (as pyenv's shims answer)
        missing = bin_dir / f"python{version}"
        missing.write_text(f"#!/bin/sh\necho 'python{version}: command not found' >&2\nexit 127\n")
        missing.chmod(0o755)
    environment = sam_environment(PYTHON=sys.executable)
    environment.pop("BYTECODE_PYTHON", None)
    path = [str(bin_dir), str(Path(sys.executable).parent), environment.get("PATH", "")]
    environment["PATH"] = ":".join(path)
    result = subprocess.run(
        [str(sam_cli()), "build"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output, bytecode_python


_BUILDS: dict[tuple[str, bool], Build] = {}


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    """`builds(variant, with_requirements=False)`: that variant rendered and built, once."""

    def get(name: str, with_requirements: bool = False) -> Build:
        key = (name, with_requirements)
        if key not in _BUILDS:
            label = f"build-{name}{'-requirements' if with_requirements else ''}"
            tmp = tmp_path_factory.mktemp(label)
            project = render(tmp / "project", **BUILD_VARIANTS[name])
            answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
            if with_requirements:
                with (project / "requirements.txt").open("a") as requirements:
                    requirements.write(USER_REQUIREMENTS)
            offer = name in WITH_TARGET_PYTHON
            output, bytecode_python = sam_build(project, answers, tmp, offer)
            _BUILDS[key] = Build(name, project, answers, output, bytecode_python)
        return _BUILDS[key]

    return get


def project_sources(build: Build) -> set[str]:
    """The .py files of the handler package and the runtime, relative to the project."""
    return {
        str(path.relative_to(build.project))
        for package in (build.package_name, "lambda_streaming")
        for path in (build.project / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }


def files_under(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


# ------------------------------------------------------------------------------------ the build


@per_build
def test_sam_build_packages_only_what_the_function_needs(builds: Builds, variant: str) -> None:
    build = builds(variant)
    assert sorted(path.name for path in build.artifact.iterdir()) == sorted(
        ["exec-wrapper", "lambda_streaming", build.package_name]
    )
    shipped = files_under(build.artifact)
    sources = {path for path in shipped if "__pycache__" not in path}
    assert sources == project_sources(build) | {"exec-wrapper"}  # no tests, events, docs, caches
    for name in shipped - sources:
        pyc = Path(name)
        assert pyc.parent.name == "__pycache__", name
        assert pyc.name.endswith(f".{build.python_tag}.pyc"), name  # no stale pyc of another Python
        assert str(pyc.parent.parent / (pyc.name.split(".")[0] + ".py")) in sources, name
    assert (build.artifact / "exec-wrapper").read_bytes() == (
        build.project / "exec-wrapper"
    ).read_bytes()


@per_build
def test_built_template_points_the_function_at_its_artifact(builds: Builds, variant: str) -> None:
    build = builds(variant)
    function = build.built_template["Resources"][build.function_id]["Properties"]
    assert function["CodeUri"] == build.function_id
    assert function["Runtime"] == f"python{build.answers['python_version']}"
    assert function["Architectures"] == [build.answers["architecture"]]


@per_build
def test_bytecode_ships_exactly_when_the_build_has_the_target_python(
    builds: Builds, variant: str
) -> None:
    build = builds(variant)
    sources = sorted(path for path in files_under(build.artifact) if path.endswith(".py"))
    pycs = sorted(build.artifact.rglob("*.pyc"))
    version = build.answers["python_version"]
    if build.bytecode_python is None:
        assert pycs == []
        assert f"Bytecode: none shipped. No Python {version} here" in build.output
        return
    assert f"Bytecode: compiled for Python {version}" in build.output
    assert len(pycs) == len(sources)  # every module, so nothing is compiled at cold start
    for pyc in pycs:
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == UNCHECKED_HASH_FLAGS, pyc  # valid whatever times the zip gives the files


@per_build
def test_requirements_install_for_the_functions_platform_and_python(
    builds: Builds, variant: str
) -> None:
    build = builds(variant, with_requirements=True)
    architecture = str(build.answers["architecture"])
    python = "cp" + str(build.answers["python_version"]).replace(".", "")
    assert (build.artifact / "six.py").is_file()
    assert wheel_tags(build.artifact, "six") == ["py2-none-any", "py3-none-any"]
    tags = wheel_tags(build.artifact, "markupsafe")
    assert tags, "MarkupSafe has no WHEEL tags"
    for tag in tags:
        interpreter, abi, platform = tag.split("-")
        assert (interpreter, abi) == (python, python), tag
        assert platform.startswith("manylinux") and platform.endswith(WHEEL_ARCH[architecture])
    (extension,) = (build.artifact / "markupsafe").glob("_speedups*.so")
    assert extension.name.startswith(f"_speedups.{python.replace('cp', 'cpython-')}-")
    elf = extension.read_bytes()[:20]
    assert elf[:4] == b"\x7fELF"
    assert int.from_bytes(elf[18:20], "little") == ELF_MACHINE[architecture]


def wheel_tags(artifact: Path, distribution: str) -> list[str]:
    (dist_info,) = artifact.glob(f"{distribution}-*.dist-info")
    lines = (dist_info / "WHEEL").read_text().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")]


# ------------------------------------------------------------------ the zip that sam deploy uploads


def deployment_zip(build: Build, destination: Path) -> Path:
    """Zip the artifact with the SAM CLI's helper for Lambda code, as `sam deploy` does."""
    script = (
        "import sys\n"
        "from samcli.lib.package.utils import make_zip_with_lambda_permissions\n"
        "print(make_zip_with_lambda_permissions(sys.argv[1], sys.argv[2]))\n"
    )
    result = subprocess.run(
        [str(SAM_VENV / "bin" / "python"), "-c", script, str(destination), str(build.artifact)],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(result.stdout.strip())


def unzip_like_lambda(archive: Path, task_root: Path) -> None:
    """Extract with each entry's unix mode, as Lambda does into /var/task (zipfile drops modes)."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            path = Path(zipped.extract(info, task_root))
            if info.create_system == 3:
                path.chmod(stat.S_IMODE(info.external_attr >> 16))


@pytest.fixture(scope="session")
def task_roots(builds: Builds, tmp_path_factory: pytest.TempPathFactory) -> TaskRoots:
    """`task_roots(variant)`: (the deployment zip, its contents unzipped as in /var/task)."""
    made: dict[str, tuple[Path, Path]] = {}

    def get(name: str) -> tuple[Path, Path]:
        if name not in made:
            tmp = tmp_path_factory.mktemp(f"zip-{name}")
            archive = deployment_zip(builds(name), tmp / "function")
            unzip_like_lambda(archive, tmp / "var" / "task")
            made[name] = (archive, tmp / "var" / "task")
        return made[name]

    return get


@per_build
def test_deployment_zip_keeps_the_wrapper_executable(
    builds: Builds, task_roots: TaskRoots, variant: str
) -> None:
    archive, _ = task_roots(variant)
    with zipfile.ZipFile(archive) as zipped:
        modes = {info.filename: info.external_attr >> 16 for info in zipped.infolist()}
    assert set(modes) == files_under(builds(variant).artifact)
    assert stat.S_ISREG(modes["exec-wrapper"])
    assert stat.S_IMODE(modes["exec-wrapper"]) == 0o755
    for name, mode in modes.items():
        assert stat.S_ISREG(mode), name
        assert mode & 0o444 == 0o444, name  # Lambda runs the code as another user: all may read


# -------------------------------------------------------------------- started the way Lambda does


@dataclass(frozen=True)
class LambdaStart:
    """One invocation served by the unzipped artifact, started as the managed runtime starts it."""

    task_root: Path
    returncode: int
    stderr: str
    request: Any  # the Runtime API double's RecordedRequest for the response


LambdaStarts = Callable[[str], LambdaStart]


def runtime_api_double(project: Path) -> ModuleType:
    """The generated project's own Runtime API double (tests/runtime_api_double.py)."""
    path = project / "tests" / "runtime_api_double.py"
    spec = importlib.util.spec_from_file_location(f"runtime_api_double_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def lambda_environment(build: Build, task_root: Path, runtime_api: str) -> dict[str, str]:
    """What Lambda gives the process (DOC configuration-envvars), the function's own variables."""
    template = load_template(build.project / "template.yaml")
    properties = template["Resources"][build.function_id]["Properties"]
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        **properties["Environment"]["Variables"],
        "STREAM_PAUSE_MS": PAUSE_MS,
        "_HANDLER": properties["Handler"],
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_REGION": str(build.answers["aws_region"]),
        "AWS_LAMBDA_FUNCTION_NAME": build.function_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties["MemorySize"]),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{build.function_id}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        # Never write bytecode (/var/task is read-only); report where each module's code came from.
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONVERBOSE": "1",
    }


_STARTS: dict[str, LambdaStart] = {}


@pytest.fixture(scope="session")
def lambda_starts(
    builds: Builds, task_roots: TaskRoots, tmp_path_factory: pytest.TempPathFactory
) -> LambdaStarts:
    """`lambda_starts(variant)`: the unzipped artifact run once with Lambda's calling convention."""

    def get(name: str) -> LambdaStart:
        if name not in _STARTS:
            build = builds(name)
            _, task_root = task_roots(name)
            double_module = runtime_api_double(build.project)
            double = double_module.RuntimeApiDouble()
            event = (build.project / "events" / "api-gateway-request.json").read_bytes()
            double.invoke(event)
            python = python_for(str(build.answers["python_version"]))
            process = subprocess.Popen(
                # What Lambda runs when AWS_LAMBDA_EXEC_WRAPPER is set (STREAMING-PROTOCOL.md 4).
                [str(task_root / "exec-wrapper"), python, "/var/runtime/bootstrap.py"],
                cwd=tmp_path_factory.mktemp(f"cwd-{name}"),
                env=lambda_environment(build, task_root, double.address),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                (request,) = double.wait_for(1, timeout=LAMBDA_START_TIMEOUT_SECONDS)
            finally:
                double.close()  # the Runtime API goes away: the runtime exits
                _, stderr = process.communicate(timeout=LAMBDA_START_TIMEOUT_SECONDS)
            _STARTS[name] = LambdaStart(task_root, process.returncode, stderr, request)
        return _STARTS[name]

    return get


@per_build
def test_built_artifact_streams_when_started_like_lambda(
    lambda_starts: LambdaStarts, variant: str
) -> None:
    started = lambda_starts(variant)
    request = started.request
    assert started.returncode == 0, started.stderr[-4000:]
    assert (request.method, request.path) == (
        "POST",
        "/2018-06-01/runtime/invocation/request-1/response",
    )
    assert request.headers["lambda-runtime-function-response-mode"] == "streaming"
    assert request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in request.headers
    assert request.headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    prelude, delimiter, body = request.body.partition(PRELUDE_DELIMITER)
    assert delimiter
    assert json.loads(prelude) == {"statusCode": 200, "headers": EXAMPLE_HEADERS}
    assert body.decode().splitlines() == EXAMPLE_LINES
    # Each write is a chunk of its own on the wire: the lines were streamed, not buffered.
    assert [chunk.decode() for chunk in request.chunks[-len(EXAMPLE_LINES) :]] == [
        f"{line}\n" for line in EXAMPLE_LINES
    ]
    assert request.closed_by_client  # the runtime closes the connection when the stream ends


@per_build
def test_started_artifact_runs_on_its_shipped_bytecode(
    builds: Builds, lambda_starts: LambdaStarts, variant: str
) -> None:
    build, started = builds(variant), lambda_starts(variant)
    root = str(started.task_root)
    from_bytecode, from_source = set(), set()
    for line in started.stderr.splitlines():
        if line.startswith(f"# code object from '{root}/"):
            from_bytecode.add(line.split("'")[1])
        elif line.startswith(f"# code object from {root}/"):
            from_source.add(line.removeprefix("# code object from "))
    modules = {Path(path).name.split(".")[0] for path in from_bytecode | from_source}
    assert {"runtime", "runtime_api", "writer", "protocol", "handler"} <= modules
    if build.bytecode_python is None:
        assert from_bytecode == set()
        assert not list(started.task_root.rglob("__pycache__"))  # nothing written at start either
    else:
        assert from_source == set(), "compiled at start despite the shipped bytecode"
        assert all(f".{build.python_tag}.pyc" in path for path in from_bytecode)


# -------------------------------------------------------------------------------------- the SAM CLI


def sam_cli_pins() -> list[str]:
    """The aws-sam-cli version(s) requirements-sam.txt pins."""
    pins = (TEMPLATE_ROOT / "requirements-sam.txt").read_text()
    return re.findall(r"^aws-sam-cli==(\S+)$", pins, flags=re.MULTILINE)


def test_sam_cli_is_the_pinned_one() -> None:
    (pinned,) = sam_cli_pins()
    result = subprocess.run(
        [str(sam_cli()), "--version"], env=sam_environment(), capture_output=True, text=True
    )
    assert result.stdout.split()[-1] == pinned


# ------------------------------------------------------------------- the README's build and deploy


def readme_sam_commands(readme: str) -> list[tuple[str, list[str]]]:
    """Every `sam ...` command of the README's shell blocks: (subcommand, its arguments)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL):
        text = block.replace("\\\n", " ")
        for match in re.finditer(r"(?<![\w/.-])sam ((?:list |remote )?[a-z-]+)([^|)#;&\n]*)", text):
            commands.append((match[1], shlex.split(match[2])))
    return commands


@pytest.fixture(scope="session")
def sam_help() -> Callable[[str], str]:
    """`sam <subcommand> --help`, once each."""
    texts: dict[str, str] = {}

    def get(subcommand: str) -> str:
        if subcommand not in texts:
            result = subprocess.run(
                [str(sam_cli()), *subcommand.split(), "--help"],
                env=sam_environment(),
                capture_output=True,
                text=True,
                check=True,
            )
            texts[subcommand] = result.stdout
        return texts[subcommand]

    return get


@per_build
def test_readme_sam_commands_use_what_the_pinned_cli_and_the_project_have(
    builds: Builds, sam_help: Callable[[str], str], variant: str
) -> None:
    build = builds(variant)
    readme = (build.project / "README.md").read_text()
    commands = readme_sam_commands(readme)
    walked = {subcommand for subcommand, _ in commands}
    assert walked >= {
        "validate", "build", "deploy", "list stack-outputs", "remote invoke", "logs", "delete",
    }  # fmt: skip
    for subcommand, arguments in commands:
        help_text = sam_help(subcommand)
        for option in [argument.split("=")[0] for argument in arguments if argument[:2] == "--"]:
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text), (
                f"sam {subcommand} has no {option}"
            )
        if "--event-file" in arguments:
            assert (build.project / arguments[arguments.index("--event-file") + 1]).is_file()
        if subcommand == "remote invoke":
            assert arguments[0] == build.function_id
        if "--name" in arguments:
            assert arguments[arguments.index("--name") + 1] == build.function_id
    assert set(re.findall(r"aws-sam-cli==([\d.]+)", readme)) == set(sam_cli_pins())
