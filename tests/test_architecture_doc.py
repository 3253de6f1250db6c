"""docs/ARCHITECTURE.md stays true: a line on every module of the package, every
command's library call named, and the README points at it (nothing outside the
repository)."""

from __future__ import annotations

import re
from pathlib import Path

from evreid.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "evreid"
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _listed() -> set[str]:
    """Module paths the package map names: `name.py` bullets under a `folder/` heading."""
    listed, folder = set(), ""
    for line in DOC.split("## Package map", 1)[1].split("## Where to add", 1)[0].splitlines():
        heading = re.fullmatch(r"`([a-z_]+/)`.*", line)
        if heading:
            folder = heading.group(1)
        elif line == "Top level":
            folder = ""
        bullet = re.match(r"- `([a-z0-9_/]+\.py)`", line)
        if bullet:
            listed.add(folder + bullet.group(1))
    return listed


def test_every_module_has_its_line_and_no_line_names_a_missing_one():
    modules = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
    assert _listed() == modules


def test_every_command_is_mapped_and_the_readme_links_the_doc():
    for name in COMMANDS:
        assert f"- `{name}.py`: `evreid {name}" in DOC, name
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/ARCHITECTURE.md)" in readme and "DESIGN.md" not in readme
