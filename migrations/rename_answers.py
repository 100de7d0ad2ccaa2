"""Move recorded answers to a question's new name, for copier.yml's `_migrations`.

Copier runs this in the project's folder before it reads the answers of an update (`when` the
stage is "before"), so a renamed question keeps the answer the user gave under its old name:

    python rename_answers.py .copier-answers.yml old_name=new_name [old=new ...]

Copier writes the answers file as plain YAML, one top-level `name: value` per question, so a rename
only has to change the key at the start of its line: comments, order, quoting and the layout of
multi-line values stay as they were. Standard library only; it runs on Copier's own Python.
Running it twice changes nothing: an answer already under its new name is left alone.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def rename_answers(text: str, renames: Mapping[str, str]) -> str:
    """`text` of an answers file with each `old:` top-level key renamed to `new:`.

    An old key whose new name is already answered is dropped instead (the newer answer wins), so
    the file never holds one question twice.
    """
    present = {match[1] for match in re.finditer(r"^([A-Za-z_]\w*):", text, flags=re.MULTILINE)}
    lines = text.splitlines(keepends=True)
    result: list[str] = []
    dropping = False
    for line in lines:
        key = re.match(r"([A-Za-z_]\w*):", line)
        if key is None:
            # A continuation line belongs to the key above it (indented, or a list item).
            if not dropping:
                result.append(line)
            continue
        old = key[1]
        new = renames.get(old)
        dropping = new is not None and new in present
        if dropping:
            continue
        result.append(f"{new}{line[len(old) :]}" if new is not None else line)
    return "".join(result)


def parse_renames(pairs: Sequence[str]) -> dict[str, str]:
    renames = {}
    for pair in pairs:
        old, separator, new = pair.partition("=")
        if not (separator and old.isidentifier() and new.isidentifier()) or old == new:
            raise ValueError(f"expected old_name=new_name with two different names, got {pair!r}")
        renames[old] = new
    return renames


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    answers_file, *pairs = argv
    try:
        renames = parse_renames(pairs)
    except ValueError as error:
        print(f"rename_answers: {error}", file=sys.stderr)
        return 2
    path = Path(answers_file)
    path.write_text(rename_answers(path.read_text(encoding="utf-8"), renames), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
