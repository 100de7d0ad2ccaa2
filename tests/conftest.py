"""Shared helpers for the template's tests: render the template with Copier's API."""

from __future__ import annotations

import os
import subprocess
import sys
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


def run_in(
    project: Path, *command: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `command` in a rendered project with the template's interpreter, capturing its output."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable if command[0] == "python" else command[0], *command[1:]],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template rendered with every default, as `copier copy --defaults` gives it."""
    return render(tmp_path_factory.mktemp("defaults") / "streaming-numbers")
