"""The template repository's own code reads like the code it generates: ruff-clean, formatted."""

import subprocess
import sys
from pathlib import Path

from conftest import TEMPLATE_ROOT

RUFF = Path(sys.executable).with_name("ruff")


def test_tooling_passes_ruff_check():
    result = subprocess.run(
        [RUFF, "check", "."], cwd=TEMPLATE_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_tooling_is_ruff_formatted():
    result = subprocess.run(
        [RUFF, "format", "--check", "."],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
