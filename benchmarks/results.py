"""Writing one benchmark's section into benchmarks/RESULTS.md without touching the others."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, name: str, text: str) -> None:
    """Replaces the section between ``<!-- name:begin -->`` and ``<!-- name:end -->`` (or
    appends it), so each script owns its part of the file."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    current = path.read_text() if path.exists() else ""
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        _, tail = rest.split(end, 1)
        path.write_text(head + block + tail.lstrip("\n"))
    else:
        path.write_text(current.rstrip() + "\n\n" + block)
