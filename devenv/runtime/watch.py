"""Watching code folders for edits without polling them: inotify (through watchfiles), so an
idle stack reads nothing and an edit is seen within milliseconds."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", "~")


def relevant(path: str) -> bool:
    """An edit worth reloading for: not bytecode, editor swap files or hidden files and folders."""
    parts = Path(path).parts
    if any(part == "__pycache__" or part.startswith(".") for part in parts):
        return False
    return not path.endswith(IGNORED_SUFFIXES)


def owners(changed: Iterable[str], roots: Iterable[Path]) -> set[Path]:
    """The watched roots that contain a changed path (pure)."""
    found = set()
    resolved = [(root, str(root.resolve())) for root in roots]
    for path in changed:
        for root, text in resolved:
            if path == text or path.startswith(text.rstrip("/") + "/"):
                found.add(root)
    return found


async def watch(roots: Iterable[Path], on_change: Callable[[set[Path]], Awaitable[None] | None], *,
                on_ready: Callable[[], None] | None = None, debounce_ms: int = 50) -> None:
    """Calls ``on_change`` with the roots whose files changed, until cancelled; ``on_ready``
    once the folders are watched (an edit from then on is seen)."""
    from watchfiles import awatch

    folders = sorted({Path(r) for r in roots if Path(r).is_dir()})
    pending = on_ready
    if not folders:
        if pending is not None:
            pending()
        return
    async for changes in awatch(*folders, debounce=debounce_ms, step=debounce_ms, yield_on_timeout=True,
                                rust_timeout=100, watch_filter=lambda _change, path: relevant(path),
                                recursive=True):
        if pending is not None:  # the first batch (or the first timeout) comes once inotify watches
            pending, call = None, pending
            call()
        hit = owners((path for _change, path in changes), folders)
        if hit:
            result = on_change(hit)
            if result is not None:
                await result


def changes(roots: Iterable[Path], *, on_ready: Callable[[], None] | None = None,
            debounce_ms: int = 200) -> Iterator[set[Path]]:
    """The same, for a blocking caller (`devenv deploy --watch`): yields the changed roots of
    each batch of edits until interrupted. ``on_ready`` runs once the folders are watched, so
    an edit made during it (or right after) is not missed."""
    from watchfiles import watch as watch_files

    folders = sorted({Path(r) for r in roots if Path(r).is_dir()})
    if not folders:
        return
    pending = on_ready
    for found in watch_files(*folders, debounce=debounce_ms, watch_filter=lambda _change, path: relevant(path),
                             recursive=True, raise_interrupt=True, yield_on_timeout=True, rust_timeout=100):
        if pending is not None:  # the first batch (or the first timeout) comes once inotify watches
            pending, call = None, pending
            call()
        hit = owners((path for _change, path in found), folders)
        if hit:
            yield hit
