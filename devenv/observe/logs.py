"""Reading component logs: the last lines of each, merged in time order, and following them.

Each component writes its own file in .devenv/logs/; merging uses the order lines were
read in (files carry no common timestamp format), which is exact when following.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..runtime.process import tail


class LogFollower:
    def __init__(self, files: Mapping[str, Path], *, poll_interval: float = 0.1):
        self._files = dict(files)
        self._offsets: dict[str, int] = {}
        self._partial: dict[str, str] = {}
        self._poll = poll_interval

    def history(self, lines: int) -> list[tuple[str, str]]:
        """The last ``lines`` lines of each file (component by component), and remembers
        where each file ends so ``follow`` prints only what comes after."""
        found: list[tuple[str, str]] = []
        for name, path in self._files.items():
            found.extend((name, line) for line in tail(path, lines))
            self._offsets[name] = path.stat().st_size if path.exists() else 0
        return found

    def read_new(self) -> list[tuple[str, str]]:
        """Complete lines written since the last call."""
        found: list[tuple[str, str]] = []
        for name, path in self._files.items():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            offset = self._offsets.get(name, 0)
            if size < offset:  # truncated or replaced: start again from the top
                offset = 0
            if size == offset:
                continue
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read(size - offset).decode(errors="replace")
            self._offsets[name] = size
            text = self._partial.pop(name, "") + chunk
            *complete, rest = text.split("\n")
            if rest:
                self._partial[name] = rest
            found.extend((name, line) for line in complete)
        return found

    def follow(self) -> Iterator[tuple[str, str]]:
        """New lines as they are written, until the caller stops iterating (Ctrl-C)."""
        while True:
            batch = self.read_new()
            yield from batch
            if not batch:
                time.sleep(self._poll)  # polling a file for growth; not synchronisation


__all__ = ["LogFollower"]
