"""Shared helpers for the template's tests: render the template with Copier's API."""

from __future__ import annotations

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
