"""The generated project's CI workflow (.github/workflows/ci.yml): when it runs, what it may do,
which Python it runs on, and that its lint, test and build steps pass as written.

The steps are run in bash as GitHub runs them, on the rendered project, with this suite's pinned
tools standing in for what the install steps would install: ruff and pytest from .venv, the SAM
CLI from .venv-sam (as `$RUNNER_TEMP/sam`, where the workflow installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SAM_VENV, TEMPLATE_ROOT, render, sam_environment

pytestmark = pytest.mark.xdist_group("ci-workflow")

CI = Path(".github/workflows/ci.yml")
WORKFLOWS = (CI, Path(".github/workflows/template-update.yml"))
PYTHON_VARIANTS = {"3.11", "3.12", "3.13", "3.14"}


def workflow_of(project: Path, path: Path = CI) -> dict[Any, Any]:
    return yaml.safe_load((project / path).read_text())


@pytest.fixture(scope="module")
def projects_by_python(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The template rendered for every Python version it offers (x86_64 for one of them)."""
    projects = {}
    for version in sorted(PYTHON_VARIANTS):
        answers: dict[str, str] = {"python_version": version}
        if version == "3.12":
            answers["architecture"] = "x86_64"
        projects[version] = render(tmp_path_factory.mktemp(f"ci-{version}") / "project", **answers)
    return projects


def job_script(job: dict[str, Any]) -> str:
    """Every `run` of a job, one after the other."""
    return "\n".join(step.get("run", "") for step in job["steps"])


def steps_of(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_ci_runs_on_every_push_and_pull_request_and_only_reads(default_project: Path) -> None:
    workflow = workflow_of(default_project)
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "pull_request"}
    assert all(trigger is None for trigger in triggers.values())  # every branch, every path
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        assert "permissions" not in job  # no job widens them
        checkout = job["steps"][0]
        assert checkout["uses"].startswith("actions/checkout@")
        assert checkout["with"]["persist-credentials"] is False


def test_ci_lints_tests_and_builds(default_project: Path) -> None:
    jobs = workflow_of(default_project)["jobs"]
    assert set(jobs) == {"lint", "test", "build"}
    scripts = {name: job_script(job) for name, job in jobs.items()}
    assert "ruff check ." in scripts["lint"] and "ruff format --check ." in scripts["lint"]
    assert "python -m pytest" in scripts["test"]
    assert re.search(r"sam\"? build$", scripts["build"], flags=re.MULTILINE)
    assert re.search(r"sam\"? validate --lint$", scripts["build"], flags=re.MULTILINE)


def test_ci_python_is_the_lambda_runtimes(projects_by_python: dict[str, Path]) -> None:
    for version, project in projects_by_python.items():
        answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
        assert answers["python_version"] == version
        for name, job in workflow_of(project)["jobs"].items():
            setups = [step for step in job["steps"] if "setup-python@" in step.get("uses", "")]
            assert len(setups) == 1, f"job {name} must set up exactly one Python"
            assert setups[0]["with"]["python-version"] == version, (version, name)


def test_workflows_pin_every_action_to_one_full_commit_sha(default_project: Path) -> None:
    """Both workflows: a 40-hex SHA with its tag as a comment, and one SHA per action."""
    shas: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        lines = (default_project / path).read_text().splitlines()
        for use in [line.split("uses:", 1)[1].strip() for line in lines if "uses:" in line]:
            action, _, rest = use.partition("@")
            sha, _, comment = rest.partition("#")
            assert re.fullmatch(r"[\w.-]+/[\w.-]+", action), use
            assert re.fullmatch(r"[0-9a-f]{40}", sha.strip()), use
            assert re.fullmatch(r"v\d+(\.\d+)*", comment.strip()), use
            shas.setdefault(action, set()).add(use)
    assert {action: len(uses) for action, uses in shas.items()} == dict.fromkeys(shas, 1)
    assert set(shas) == {"actions/checkout", "actions/setup-python"}


def test_ci_installs_the_sam_cli_the_template_is_tested_with(default_project: Path) -> None:
    installed = {
        step["env"]["SAM_CLI_VERSION"]
        for step in steps_of(workflow_of(default_project))
        if "SAM_CLI_VERSION" in step.get("env", {})
    }
    pins = (TEMPLATE_ROOT / "requirements-sam.txt").read_text()
    assert installed == set(re.findall(r"^aws-sam-cli==(\S+)$", pins, flags=re.MULTILINE))


def test_ci_installs_the_dev_tools_pyproject_pins(default_project: Path) -> None:
    for job_name in ("lint", "test"):
        job = workflow_of(default_project)["jobs"][job_name]
        assert "python -m pip install --quiet --group dev" in job_script(job)


def test_ci_test_job_installs_the_functions_requirements_before_pytest(
    default_project: Path,
) -> None:
    """The handler may import what requirements.txt names: pytest would fail at collection."""
    runs = [step.get("run", "") for step in workflow_of(default_project)["jobs"]["test"]["steps"]]
    lines = [line.strip() for run in runs for line in run.splitlines()]
    install = lines.index("python -m pip install --quiet --requirement requirements.txt")
    assert install < lines.index("python -m pytest")
    assert install > lines.index('python -m pip install --quiet "pip==$PIP_VERSION"')


def test_ci_build_job_installs_uv_before_sam_build(default_project: Path) -> None:
    """The Makefile installs requirements.txt with uv."""
    steps = workflow_of(default_project)["jobs"]["build"]["steps"]
    runs = [step.get("run", "") for step in steps]
    install = runs.index('python -m pip install --quiet "uv==$UV_VERSION"')
    assert install < next(i for i, run in enumerate(runs) if re.search(r"sam\"? build$", run, re.M))


def run_job(project: Path, job: str, runner_temp: Path) -> list[subprocess.CompletedProcess[str]]:
    """The job's `run` steps (not its installs) in bash, as GitHub runs them, in `project`."""
    workflow = workflow_of(project)
    sam = runner_temp / "sam"
    if not sam.exists():
        sam.mkdir(parents=True)
        (sam / "bin").symlink_to(SAM_VENV / "bin")
    base = sam_environment(RUNNER_TEMP=str(runner_temp))
    base["PATH"] = f"{Path(sys.executable).parent}:{base['PATH']}"  # python, ruff, pytest
    for name in ("PYTHONPATH", "PYTEST_ADDOPTS", "AWS_LAMBDA_RUNTIME_API", "_HANDLER"):
        base.pop(name, None)
    results = []
    for step in workflow["jobs"][job]["steps"]:
        if "run" not in step or step.get("name", "").startswith("Install"):
            continue
        environment = {**base, **workflow.get("env", {}), **step.get("env", {})}
        results.append(
            subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                cwd=project,
                env={key: str(value) for key, value in environment.items()},
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        )
    return results


@pytest.mark.parametrize("job", ["lint", "test", "build"])
def test_ci_job_steps_pass_as_written(default_project: Path, tmp_path: Path, job: str) -> None:
    project = tmp_path / "project"
    shutil.copytree(default_project, project, symlinks=True)
    results = run_job(project, job, tmp_path / "runner")
    assert results, f"job {job} runs nothing"
    for result in results:
        assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    if job == "build":
        assert (project / ".aws-sam" / "build" / "template.yaml").is_file()
