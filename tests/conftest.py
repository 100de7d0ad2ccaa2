"""Shared helpers for the template's tests: render the template with Copier's API."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from copier import run_copy

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent


def render(destination: Path, **answers: object) -> Path:
    """Render the working tree of the template (HEAD plus uncommitted changes) with `answers`."""
    run_copy(
        str(TEMPLATE_ROOT),
        destination,
        data=answers,
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    return destination


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template rendered with every default, as `copier copy --defaults` gives it."""
    return render(tmp_path_factory.mktemp("defaults") / "streaming-numbers")


# The pinned AWS SAM CLI (requirements-sam.txt), in the venv `python3 dev.py test` makes for it.
SAM_VENV = TEMPLATE_ROOT / ".venv-sam"


def sam_cli() -> Path:
    """The pinned `sam`; a missing one is a broken setup (run `python3 dev.py test`), not a skip."""
    sam = SAM_VENV / "bin" / "sam"
    if not sam.exists():
        pytest.fail(f"{sam} is missing: `python3 dev.py test` installs requirements-sam.txt there")
    return sam


def sam_environment(**overrides: str) -> dict[str, str]:
    """This environment for a `sam` command, without SAM's telemetry."""
    return {**os.environ, "SAM_CLI_TELEMETRY": "0", **overrides}


def sam_validate_lint(project: Path, region: str) -> str:
    """`sam validate --lint` in `project`: its output, after asserting that it passed."""
    result = subprocess.run(
        [str(sam_cli()), "validate", "--lint", "--region", region],
        cwd=project,
        env=sam_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr
