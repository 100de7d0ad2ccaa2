"""Support for the lifecycle tests: throwaway git repositories of the template, at two releases.

`TemplateRepository.of_working_tree` copies what Copier reads (copier.yml, template/,
migrations/) from this checkout, uncommitted changes included, into a new git repository: version
A is the template as it is today. `release_version_b` then makes the kind of release a user takes
with `copier update`: a runtime fix, a new question with a default, a renamed question with its
migration, and changes to files the user owns after the first copy. Everything is local: Copier
clones the repository by its path, so no test needs the network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from conftest import TEMPLATE_ROOT

# What Copier reads from a clone of the template (`_subdirectory: template` plus the migrations).
TEMPLATE_PATHS = ("copier.yml", "template", "migrations", "tasks")

VERSION_A = "0.1.0"
VERSION_B = "0.2.0"

# Version B's changes, named so the tests can say what they expect.
RUNTIME_FIX = (
    '\n# Fixed in 0.2.0: the kind of change `copier update` must bring.\nFIXED_IN = "0.2.0"\n'
)
RUNTIME_FIX_MODULE = "lambda_streaming/protocol.py"
NEW_QUESTION = "log_format"
NEW_QUESTION_DEFAULT = "JSON"
RENAMED_QUESTION = ("log_retention_days", "log_retention_in_days")
TEMPLATE_README_ADDITION = "\nRelease 0.2.0 of the template added this paragraph.\n"
EXAMPLE_HANDLER_CHANGE = "\n# 0.2.0 reworded the example handler.\n"
REQUIREMENTS_CHANGE = "# 0.2.0 rewrote this comment.\n"

# A fixed identity and no signing, whatever the machine's git configuration says.
GIT_ENVIRONMENT = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "template-tests@example.invalid",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "template-tests@example.invalid",
}
GIT_OPTIONS = (
    "-c",
    "commit.gpgsign=false",
    "-c",
    "tag.gpgsign=false",
    "-c",
    "init.defaultBranch=main",
)


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd`; its stdout. Raises with git's message on failure."""
    result = subprocess.run(
        ["git", *GIT_OPTIONS, *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENVIRONMENT},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout


def commit_all(repository: Path, message: str) -> None:
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--no-verify", "--allow-empty", "--message", message)


@dataclass(frozen=True)
class TemplateRepository:
    """A git repository holding a copy of the template, released with PEP 440 tags."""

    path: Path

    @classmethod
    def of_working_tree(cls, destination: Path) -> TemplateRepository:
        """The template as this checkout has it (tracked and new files, not ignored ones)."""
        listed = git(
            TEMPLATE_ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--",
            *TEMPLATE_PATHS,
        )  # fmt: skip
        for relative in filter(None, listed.split("\0")):
            source = TEMPLATE_ROOT / relative
            if source.is_file():  # a tracked file deleted in the working tree is gone
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        git(destination, "init", "--quiet")
        return cls(destination)

    def release(self, version: str) -> None:
        """Commit everything and tag it `version`, as CONTRIBUTING.md's release procedure does."""
        commit_all(self.path, f"Release {version}")
        git(self.path, "tag", version)

    def edit(self, relative: str, change: Callable[[str], str]) -> None:
        path = self.path / relative
        path.write_text(change(path.read_text()))

    def files_under(self, relative: str) -> dict[str, bytes]:
        root = self.path / relative
        return {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        }


def release_version_b(repository: TemplateRepository) -> None:
    """Version B: what a later release of the template changes, then the 0.2.0 tag."""
    template = "template"
    # A runtime fix, and the runtime's version with it.
    repository.edit(f"{template}/{RUNTIME_FIX_MODULE}", lambda text: text + RUNTIME_FIX)
    repository.edit(
        f"{template}/lambda_streaming/__init__.py",
        lambda text: re.sub(
            r'^__version__ = "[^"]*"', f'__version__ = "{VERSION_B}"', text, flags=re.MULTILINE
        ),
    )
    # A question renamed, everywhere the template uses it, with the migration that moves its answer.
    old, new = RENAMED_QUESTION
    for path in [repository.path / "copier.yml", *(repository.path / template).rglob("*.jinja")]:
        path.write_text(re.sub(rf"\b{old}\b", new, path.read_text()))
    repository.edit("copier.yml", _with_new_question_and_migration)
    # A new template file that uses the new answer.
    (repository.path / template / "docs" / "LOGGING.md.jinja").write_text(
        "# Logs\n\nThe function writes its logs as {{ log_format }}.\n"
    )
    # Changes to files the user owns after the first copy, and to a file both sides edit.
    repository.edit(
        f"{template}/{{{{package_name}}}}/handler.py", lambda t: t + EXAMPLE_HANDLER_CHANGE
    )
    repository.edit(f"{template}/requirements.txt", lambda text: REQUIREMENTS_CHANGE + text)
    repository.edit(f"{template}/README.md.jinja", lambda text: text + TEMPLATE_README_ADDITION)
    repository.release(VERSION_B)


def _with_new_question_and_migration(text: str) -> str:
    config: dict[str, Any] = yaml.safe_load(text)
    config[NEW_QUESTION] = {
        "type": "str",
        "help": "Format of the function's logs",
        "default": NEW_QUESTION_DEFAULT,
        "choices": ["Text", "JSON"],
    }
    old, new = RENAMED_QUESTION
    config["_migrations"] = [
        *(config.get("_migrations") or []),
        {
            "version": VERSION_B,
            "when": "{{ _stage == 'before' }}",
            "command": [
                "{{ _copier_python }}",
                "{{ _copier_conf.src_path }}/migrations/rename_answers.py",
                "{{ _copier_conf.answers_file }}",
                f"{old}={new}",
            ],
        },
    ]
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=1000)
