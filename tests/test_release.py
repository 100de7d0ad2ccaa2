"""Releases of the template and what they promise.

PEP 440 versions in the changelog, the runtime that carries its release's version, the oldest Copier
that renders the template, who owns which file on update, and the migration that moves an answer.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from conftest import TEMPLATE_ROOT
from packaging.version import Version

CHANGELOG = TEMPLATE_ROOT / "CHANGELOG.md"
RENAME_ANSWERS = TEMPLATE_ROOT / "migrations" / "rename_answers.py"
# "## [0.1.0] - 2026-12-03", as Keep a Changelog writes a release.
RELEASE_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\] - (?P<date>\d{4}-\d{2}-\d{2})$", re.M)


def released_versions() -> list[str]:
    return [match["version"] for match in RELEASE_HEADING.finditer(CHANGELOG.read_text())]


def runtime_version() -> str:
    source = (TEMPLATE_ROOT / "template" / "lambda_streaming" / "__init__.py").read_text()
    (value,) = [
        ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["__version__"]
    ]
    return value


def copier_config() -> dict:
    return yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())


def test_runtime_version_is_the_latest_release_in_the_changelog() -> None:
    assert runtime_version() == released_versions()[0]


def test_releases_are_pep_440_versions_newest_first() -> None:
    versions = released_versions()
    assert versions, "CHANGELOG.md names at least one release"
    # Copier ignores tags that are not PEP 440 and orders the rest as PEP 440 does.
    assert [str(Version(version)) for version in versions] == versions
    assert sorted(versions, key=Version, reverse=True) == versions


def test_min_copier_version_supports_the_operation_in_exclude_and_is_tested() -> None:
    config = copier_config()
    minimum = Version(config["_min_copier_version"])
    if any("_copier_operation" in pattern for pattern in config.get("_exclude", [])):
        assert minimum >= Version("9.6.0")  # the first release that renders it in `_exclude`
    pins = (TEMPLATE_ROOT / "requirements-dev.txt").read_text()
    (tested,) = re.findall(r"^copier==(\S+)$", pins, flags=re.MULTILINE)
    assert minimum <= Version(tested)


def test_users_handler_and_its_test_are_never_rendered_on_update() -> None:
    from jinja2 import Environment

    config = copier_config()

    def excluded(operation: str) -> set[str]:
        rendered = (
            Environment()
            .from_string(pattern)
            .render(_copier_operation=operation, package_name="pkg")
            for pattern in config["_exclude"]
        )
        return {pattern for pattern in rendered if pattern}

    assert excluded("copy") == set()
    assert excluded("update") == {"pkg/handler.py", "tests/test_handler.py"}
    assert config["_skip_if_exists"] == ["requirements.txt"]


# ---------------------------------------------------------------- migrations/rename_answers.py

ANSWERS = """\
# Changes here will be overwritten by Copier
_commit: 0.1.0
_src_path: gh:owner/copier-lambda-streaming
description: A function that streams
  over two lines
log_retention_days: 90
stage_name: prod
"""


@pytest.fixture(scope="module")
def rename_answers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rename_answers", RENAME_ANSWERS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rename_moves_the_answer_and_keeps_everything_else(rename_answers: ModuleType) -> None:
    renamed = rename_answers.rename_answers(ANSWERS, {"log_retention_days": "retention"})
    assert renamed == ANSWERS.replace("log_retention_days: 90", "retention: 90")
    assert yaml.safe_load(renamed)["description"] == "A function that streams over two lines"


def test_rename_of_an_answer_given_under_both_names_keeps_the_new_one(
    rename_answers: ModuleType,
) -> None:
    both = ANSWERS + "retention: 30\n"
    renamed = yaml.safe_load(
        rename_answers.rename_answers(both, {"log_retention_days": "retention"})
    )
    assert renamed["retention"] == 30
    assert "log_retention_days" not in renamed


def test_rename_twice_changes_nothing_more(rename_answers: ModuleType) -> None:
    renames = {"description": "summary", "stage_name": "stage"}
    once = rename_answers.rename_answers(ANSWERS, renames)
    assert rename_answers.rename_answers(once, renames) == once
    assert yaml.safe_load(once)["summary"] == "A function that streams over two lines"


def test_rename_command_rewrites_the_file_in_place(tmp_path: Path) -> None:
    answers = tmp_path / ".copier-answers.yml"
    answers.write_text(ANSWERS)
    command = [sys.executable, str(RENAME_ANSWERS), str(answers), "stage_name=stage"]
    subprocess.run(command, check=True)
    assert yaml.safe_load(answers.read_text())["stage"] == "prod"


@pytest.mark.parametrize("pair", ["stage_name", "stage_name=", "stage_name=stage_name", "a-b=c"])
def test_rename_command_refuses_a_malformed_pair_and_leaves_the_file(
    tmp_path: Path, pair: str
) -> None:
    answers = tmp_path / ".copier-answers.yml"
    answers.write_text(ANSWERS)
    command = [sys.executable, str(RENAME_ANSWERS), str(answers), pair]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "expected old_name=new_name" in result.stderr
    assert answers.read_text() == ANSWERS
