"""Stop an update that changed ``package_name``: the user's handler would be left behind.

Copier runs this after rendering an update (``_tasks`` in copier.yml), in the project's folder:

    python keep_package_name.py .copier-answers.yml

The handler is the user's file, never rendered again on update, so a new ``package_name`` gives a
new package without it while template.yaml and local mode point at ``<new>.handler``. Copier's
validators cannot see the answer recorded before the update, so the check runs here, where git
still has it: ``copier update`` starts only from a clean tree, so HEAD holds the old answers.
Standard library only; it runs on Copier's own Python.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def recorded_package_name(answers: str) -> str | None:
    """The ``package_name`` of an answers file's text (Copier writes one ``name: value`` a line)."""
    match = re.search(r"^package_name:[ \t]*(\S+)[ \t]*$", answers, flags=re.MULTILINE)
    return match[1].strip("'\"") if match else None


def refusal(before: str, after: str) -> str:
    return (
        f"package_name cannot change on update: it was {before!r}, now {after!r}.\n"
        f"Your handler stays in {before}/ (it is yours, so the update never moves it), while "
        f"template.yaml and local mode now point at {after}.handler, which does not exist.\n"
        "Undo this update (it started from a clean git tree):\n"
        "    git checkout -- . && git clean -fd\n"
        f"then keep package_name {before!r}, or rename the package yourself first (git mv "
        f"{before} {after}, Handler in template.yaml, package_name in .copier-answers.yml), "
        "commit, and update again."
    )


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {Path(argv[0]).name} ANSWERS_FILE", file=sys.stderr)
        return 2
    answers_file = argv[1]
    committed = subprocess.run(
        ["git", "show", f"HEAD:./{answers_file}"], capture_output=True, text=True, check=False
    )
    if committed.returncode != 0:  # not in git (Copier's scratch renders) or nothing recorded yet
        return 0
    before = recorded_package_name(committed.stdout)
    after = recorded_package_name(Path(answers_file).read_text(encoding="utf-8"))
    if before and after and before != after:
        print(refusal(before, after), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
