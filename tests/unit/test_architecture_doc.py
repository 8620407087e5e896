"""docs/architecture.md's module table matches the tree: every module of devenv/ is named
in it (itself, or its package folder), and everything it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "devenv"


def named_in_table() -> list[str]:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    table = doc[doc.index("## Modules"):doc.index("### Import rules")]
    names: list[str] = []
    for line in table.splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([^`]+)`", line.split("|")[1])
    return names


def test_every_module_is_in_the_table():
    names = named_in_table()
    folders = tuple(n for n in names if n.endswith("/"))
    modules = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
    missing = [m for m in modules if m not in names and not m.startswith(folders)]
    assert missing == [], f"modules docs/architecture.md does not name: {missing}"


def test_everything_the_table_names_exists():
    gone = [n for n in named_in_table() if not (PACKAGE / n).exists()]
    assert gone == [], f"docs/architecture.md names what is not in devenv/: {gone}"
