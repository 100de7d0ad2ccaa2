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
import os
import re
import shlex
import shutil
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
# A user's requirements.txt: a pure-Python package, one with compiled (platform) wheels, one whose
# Linux wheels are all manylinux_2_28 (none manylinux2014), one with a console script, and lines
# whose environment markers hold for Lambda's Python and CPU, not for the build machine's (it runs
# 3.11; CI may run on x86_64): WebOb needs legacy-cgi on 3.13+, tomli is for Pythons before 3.12.
USER_REQUIREMENTS = (
    "six==1.17.0\n"
    "MarkupSafe==3.0.3\n"
    "pyzmq==27.3.0\n"
    "python-dotenv==1.1.1\n"
    "WebOb==1.8.9\n"
    'tomli==2.2.1 ; python_version < "3.12"\n'
    'idna==3.10 ; platform_machine == "aarch64"\n'
)
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
    result, bytecode_python = run_sam_build(project, answers, tmp, offer_target_python)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output, bytecode_python


def shadowing_path(tmp: Path, version: str, interpreter: str | None) -> str:
    """PATH for the build: python<version> is `interpreter`, or a missing command if None."""
    bin_dir = tmp / "bin"  # first on PATH: decides what `python<version>` is for the Makefile
    bin_dir.mkdir()
    if interpreter is not None:
        (bin_dir / f"python{version}").symlink_to(interpreter)
    else:  # a machine without it, whatever else is on PATH (as pyenv's shims answer)
        missing = bin_dir / f"python{version}"
        missing.write_text(f"#!/bin/sh\necho 'python{version}: command not found' >&2\nexit 127\n")
        missing.chmod(0o755)
    # This Python's folder (.venv/bin) holds the pinned uv (requirements-dev.txt) the build runs.
    return ":".join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def run_build_command(
    command: list[str],
    project: Path,
    tmp: Path,
    version: str,
    interpreter: str | None,
    **environment: str,
) -> subprocess.CompletedProcess[str]:
    """`command` in `project`, whatever its outcome, python<version> being `interpreter` or missing
    (shadowing_path) and BYTECODE_PYTHON unset unless `environment` sets it."""
    variables = sam_environment()
    variables.pop("BYTECODE_PYTHON", None)
    variables.update(environment, PATH=shadowing_path(tmp, version, interpreter))
    return subprocess.run(
        command,
        cwd=project,
        env=variables,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def run_sam_build(
    project: Path, answers: dict[str, Any], tmp: Path, offer_target_python: bool
) -> tuple[subprocess.CompletedProcess[str], str | None]:
    """`sam build` in `project`, whatever its outcome; and the Python that compiles bytecode."""
    version = str(answers["python_version"])
    interpreter = python_for(version)  # this very Python when the machine has no <version>
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    bytecode_python = sys.executable if running == version else None  # PYTHON is the target
    offered = None
    if offer_target_python and interpreter != sys.executable:
        # This machine has Python <version>: offer it as python<version>, as an install would.
        offered = bytecode_python = interpreter
    command = [str(sam_cli()), "build"]
    result = run_build_command(command, project, tmp, version, offered, PYTHON=sys.executable)
    return result, bytecode_python


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
        # PYTHON (the one running these tests) checks the syntax only if it is not older.
        newer = sys.version_info[:2] >= tuple(int(part) for part in str(version).split("."))
        said = f"Syntax: checked with {sys.executable}" if newer else "Syntax: not checked."
        assert said in build.output
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


@per_build
def test_requirements_markers_are_evaluated_for_lambdas_python_and_cpu(
    builds: Builds, variant: str
) -> None:
    build = builds(variant, with_requirements=True)
    version = tuple(int(part) for part in str(build.answers["python_version"]).split("."))
    installed = {path.name.split("-")[0].lower() for path in build.artifact.glob("*.dist-info")}
    assert {"six", "markupsafe", "pyzmq", "python_dotenv", "webob"} <= installed
    assert ("legacy_cgi" in installed) == (version >= (3, 13)), installed  # WebOb's own marker
    assert (build.artifact / "cgi.py").is_file() == (version >= (3, 13))
    assert "tomli" not in installed  # python_version < "3.12": never on these targets
    assert ("idna" in installed) == (build.answers["architecture"] == "arm64"), installed
    assert f"for CPython {build.answers['python_version']} on " in build.output


@per_build
def test_requirements_take_manylinux_2_28_wheels_on_amazon_linux_2023(
    builds: Builds, variant: str
) -> None:
    """Lambda's python3.12+ run on Amazon Linux 2023 (glibc 2.34): pyzmq 27.3.0's Linux wheels
    are manylinux_2_28 only, which a manylinux2014-only build could not install."""
    build = builds(variant, with_requirements=True)
    arch = WHEEL_ARCH[str(build.answers["architecture"])]
    platforms = {tag.split("-")[2] for tag in wheel_tags(build.artifact, "pyzmq")}
    assert f"manylinux_2_28_{arch}" in platforms, platforms
    assert not platforms & {f"manylinux2014_{arch}", f"manylinux_2_17_{arch}"}, platforms


@per_build
def test_requirements_console_scripts_are_left_out(builds: Builds, variant: str) -> None:
    build = builds(variant, with_requirements=True)
    (dist_info,) = build.artifact.glob("python_dotenv-*.dist-info")
    assert "console_scripts" in (dist_info / "entry_points.txt").read_text()  # it has one
    assert (build.artifact / "dotenv" / "__init__.py").is_file()
    assert not (build.artifact / "bin").exists()


def wheel_tags(artifact: Path, distribution: str) -> list[str]:
    (dist_info,) = artifact.glob(f"{distribution}-*.dist-info")
    lines = (dist_info / "WHEEL").read_text().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")]


# ------------------------------------------------------------------------ what the build refuses

OFFERED_PYTHONS = ("3.11", "3.12", "3.13", "3.14")
RUNNING_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


def run_make(
    project: Path, tmp: Path, interpreter: str | None = None, **variables: str
) -> subprocess.CompletedProcess[str]:
    """The Makefile's target as `sam build` runs it, into an empty folder; python<version> is
    `interpreter` or missing. Quicker than a whole `sam build` for builds that must fail."""
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    artifacts = tmp / "artifacts"
    artifacts.mkdir(parents=True)
    assignments = [f"{name}={value}" for name, value in variables.items()]
    command = ["make", f"build-{answers['function_name']}", f"ARTIFACTS_DIR={artifacts}"]
    version = str(answers["python_version"])
    return run_build_command([*command, *assignments], project, tmp, version, interpreter)


@pytest.fixture(scope="module")
def other_version_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project for a Python version other than the one running these tests."""
    version = "3.12" if RUNNING_PYTHON == "3.13" else "3.13"
    return render(tmp_path_factory.mktemp("other-version") / "project", python_version=version)


@pytest.mark.parametrize("kind", ["another-version", "not-a-python"])
def test_bytecode_python_that_is_not_the_target_version_fails_the_build(
    other_version_project: Path, tmp_path: Path, kind: str
) -> None:
    project = other_version_project
    version = yaml.safe_load((project / ".copier-answers.yml").read_text())["python_version"]
    python = sys.executable if kind == "another-version" else str(tmp_path / "no-such-python")
    result = run_make(project, tmp_path, BYTECODE_PYTHON=python, PYTHON=sys.executable)
    assert result.returncode != 0
    said = "is Python " + RUNNING_PYTHON if kind == "another-version" else "does not run"
    assert (
        f"BYTECODE_PYTHON={python} {said}: bytecode for Lambda's python{version}" in result.stderr
    )
    assert "Bytecode: compiled" not in result.stdout
    assert list((tmp_path / "artifacts").iterdir()) == []


def break_the_handler(project: Path) -> Path:
    package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
    handler = project / package / "handler.py"
    handler.write_text(handler.read_text() + "\ndef broken(:\n    pass\n")
    return handler


@pytest.mark.skipif(RUNNING_PYTHON not in OFFERED_PYTHONS, reason="no project for this Python")
def test_syntax_error_in_the_handler_fails_sam_build(tmp_path: Path) -> None:
    """For Lambda's Python on the build machine (the one running these tests): it compiles."""
    project = render(tmp_path / "project", python_version=RUNNING_PYTHON)
    break_the_handler(project)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    result, bytecode_python = run_sam_build(project, answers, tmp_path, offer_target_python=False)
    output = result.stdout + result.stderr
    assert bytecode_python == sys.executable
    assert result.returncode != 0, output
    assert "SyntaxError" in output
    package = answers["package_name"]
    assert f"Error: {package}/ or lambda_streaming/ does not compile with Python" in output
    assert not (project / ".aws-sam" / "build" / "template.yaml").exists()


def newer_python() -> tuple[str, str] | None:
    """(an offered target version, an interpreter here newer than it), if this machine has one."""
    if RUNNING_PYTHON in OFFERED_PYTHONS[1:]:
        return OFFERED_PYTHONS[0], sys.executable
    for version in OFFERED_PYTHONS[1:]:
        interpreter = python_for(version)
        if interpreter != sys.executable:
            return OFFERED_PYTHONS[0], interpreter
    return None


def test_syntax_error_fails_the_build_without_the_target_python_when_python_is_newer(
    tmp_path: Path,
) -> None:
    """No Python <version> here, but PYTHON is newer: it checks the syntax and ships no bytecode."""
    found = newer_python()
    if found is None:
        pytest.skip("needs a Python newer than the oldest Lambda version offered")
    version, interpreter = found
    project = render(tmp_path / "project", python_version=version, architecture="x86_64")
    assert run_make(project, tmp_path / "valid", PYTHON=interpreter).returncode == 0
    handler = break_the_handler(project)
    result = run_make(project, tmp_path / "broken", PYTHON=interpreter)
    assert result.returncode != 0
    assert "SyntaxError" in result.stdout + result.stderr
    assert f"has a syntax error (above, checked with {interpreter})" in result.stdout
    assert not list(handler.parent.rglob("*.pyc"))  # the check writes no bytecode anywhere here
    assert not list((tmp_path / "broken" / "artifacts").rglob("*.pyc"))


def test_requirements_without_uv_fail_the_build_and_say_how_to_get_it(
    other_version_project: Path, tmp_path: Path
) -> None:
    project = shutil.copytree(other_version_project, tmp_path / "project")
    (project / "requirements.txt").write_text("six==1.17.0\n")
    missing = str(tmp_path / "no-uv-here")
    result = run_make(project, tmp_path, PYTHON=sys.executable, UV=missing)
    assert result.returncode != 0
    assert f"needs uv {uv_pin()}" in result.stdout
    assert f"-m pip install uv=={uv_pin()}" in result.stdout
    assert not (tmp_path / "artifacts" / "six.py").exists()


@pytest.mark.parametrize(
    ("version", "requirement", "platform"),
    [
        ("3.13", "PyYAML==5.3.1", "aarch64-manylinux_2_34 (Amazon Linux 2023, glibc 2.34)"),
        # python3.11 is Amazon Linux 2 (glibc 2.26): pyzmq 27.3.0's manylinux_2_28 wheels would
        # not load there.
        ("3.11", "pyzmq==27.3.0", "aarch64-manylinux_2_17 (Amazon Linux 2, glibc 2.26)"),
    ],
)
def test_requirement_without_a_lambda_wheel_fails_with_the_rule_and_what_to_do(
    tmp_path: Path, version: str, requirement: str, platform: str
) -> None:
    project = render(tmp_path / "project", python_version=version)
    (project / "requirements.txt").write_text(requirement + "\n")
    result = run_make(project, tmp_path, PYTHON=sys.executable)
    assert result.returncode != 0
    assert "has no usable wheels" in result.stderr  # uv's own reason
    said = " ".join(result.stdout.split())
    assert f"binary wheels for CPython {version} on {platform}; it builds no sources." in said
    assert "pin a version that publishes one" in said
    assert "a layer or a container image" in said


def uv_pin() -> str:
    """The uv the build is tested with (requirements-dev.txt)."""
    pins = (TEMPLATE_ROOT / "requirements-dev.txt").read_text()
    (pinned,) = re.findall(r"^uv==(\S+)$", pins, flags=re.MULTILINE)
    return pinned


def test_makefile_ci_and_readme_name_the_uv_the_suite_tests(default_project: Path) -> None:
    makefile = (default_project / "Makefile").read_text()
    assert re.findall(r"^UV_VERSION := (\S+)$", makefile, flags=re.MULTILINE) == [uv_pin()]
    workflow = yaml.safe_load((default_project / ".github" / "workflows" / "ci.yml").read_text())
    build = workflow["jobs"]["build"]
    assert [
        step["env"]["UV_VERSION"] for step in build["steps"] if "UV_VERSION" in step.get("env", {})
    ] == [uv_pin()]
    assert f"uv=={uv_pin()}" in (default_project / "README.md").read_text()
    uv = Path(sys.executable).parent / "uv"  # the builds here find it on PATH (shadowing_path)
    result = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.split()[:2] == ["uv", uv_pin()]  # the one the builds here ran


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


def readme_section(readme: str, title: str) -> str:
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else len(readme)]


@pytest.mark.parametrize("auth", ["IAM", "NONE"])
def test_readme_installs_the_requirements_to_run_and_test(tmp_path: Path, auth: str) -> None:
    readme = (render(tmp_path / "project", auth=auth) / "README.md").read_text()
    for title in ("Run it locally", "Test"):
        section = readme_section(readme, title)
        install = section.index("python -m pip install --requirement requirements.txt")
        if title == "Test":
            assert install < section.index("python -m pytest")
        else:
            assert install < section.index("python -m streaming_numbers")


def test_readme_build_lists_what_the_build_needs(default_project: Path) -> None:
    section = readme_section((default_project / "README.md").read_text(), "Build")
    (sam_pin,) = sam_cli_pins()
    for needed in (f"aws-sam-cli=={sam_pin}", "`make`", "Python 3.11+", f"uv=={uv_pin()}"):
        assert needed in section, needed
    assert "aarch64-manylinux_2_34" in section and "manylinux_2_28" in section
