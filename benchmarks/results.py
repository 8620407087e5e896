"""Writing one benchmark's section into benchmarks/RESULTS.md without touching the others,
and its raw samples as JSON for benchmarks/ab.py."""

from __future__ import annotations

import json
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


def write_samples(path: Path, commit: str, samples: dict[str, list[float]]) -> None:
    """The samples of each measure (lower is better unless its name says req/s), keyed by
    the measure's name, with the commit measured: what benchmarks/ab.py compares."""
    path.write_text(json.dumps({"commit": commit,
                                "samples": {k: [float(v) for v in vs] for k, vs in samples.items() if vs}},
                               indent=1))
