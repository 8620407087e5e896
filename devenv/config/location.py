"""Where a configuration value lives: its field path, and the file and line it came from.

Every check in ``devenv.config`` speaks in ``Loc`` tuples (the shape pydantic uses for error
locations); only the rendering to text for people happens here, so paths look the same in
every message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Loc = tuple[str | int, ...]
"""A field path: mapping keys as strings, list indices as ints, e.g. ``("queues", "jobs", "dlq")``."""

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-/+]+")


def format_path(loc: Loc) -> str:
    """Render a path as ``a.b[0].c``; a key that is not a plain word (``jobs.fifo``) is bracketed.

    Bracketing keeps ``queues['jobs.fifo'].dlq`` unambiguous where a dotted form would not be.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


@dataclass(frozen=True)
class Origin:
    """The file (as shown to the user) and 1-based line a value was written on; line None if unknown."""

    file: str
    line: int | None
