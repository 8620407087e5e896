"""Watching code folders for edits without polling them: inotify (through watchfiles), so an
idle stack reads nothing and an edit is seen within milliseconds."""

from __future__ import annotations

import asyncio
import logging
import threading
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
    once the folders are watched (an edit from then on is seen).

    The blocking watcher (``changes``) runs in one thread of its own for the watch's life and
    wakes the event loop only for an edit. (watchfiles' ``awatch`` hands each 100 ms wait to a
    worker thread and back, ten loop wake-ups a second: 6.8 ms of CPU a second, idle, in the
    lambda process that serves every invocation; this costs 1.5 ms.)"""
    folders = sorted({Path(r) for r in roots if Path(r).is_dir()})
    if not folders:
        if on_ready is not None:
            on_ready()
        return
    loop = asyncio.get_running_loop()
    found: asyncio.Queue[set[Path] | BaseException] = asyncio.Queue()
    stop = threading.Event()

    def ready() -> None:
        if on_ready is not None:
            loop.call_soon_threadsafe(on_ready)

    def run() -> None:
        try:
            for hit in changes(folders, on_ready=ready, debounce_ms=debounce_ms, stop=stop):
                loop.call_soon_threadsafe(found.put_nowait, hit)
        except BaseException as exc:  # said on the loop, where the caller handles it
            if not stop.is_set():
                loop.call_soon_threadsafe(found.put_nowait, exc)

    thread = threading.Thread(target=run, name="watch", daemon=True)
    thread.start()
    try:
        while True:
            hit = await found.get()
            if isinstance(hit, BaseException):
                raise hit
            result = on_change(hit)
            if result is not None:
                await result
    finally:
        stop.set()  # the thread ends within a step (debounce_ms)


def changes(roots: Iterable[Path], *, on_ready: Callable[[], None] | None = None,
            debounce_ms: int = 200, stop: threading.Event | None = None) -> Iterator[set[Path]]:
    """The same, for a blocking caller (`devenv deploy --watch`, ``watch``'s thread): yields the
    changed roots of each batch of edits until interrupted or ``stop`` is set. ``on_ready``
    runs once the folders are watched, so an edit made during it (or right after) is not missed."""
    from watchfiles import watch as watch_files

    folders = sorted({Path(r) for r in roots if Path(r).is_dir()})
    if not folders:
        return
    pending = on_ready
    for found in watch_files(*folders, debounce=debounce_ms, step=min(debounce_ms, 50),
                             watch_filter=lambda _change, path: relevant(path), recursive=True,
                             raise_interrupt=stop is None, yield_on_timeout=True, rust_timeout=100, stop_event=stop):
        if pending is not None:  # the first batch (or the first timeout) comes once inotify watches
            pending, call = None, pending
            call()
        hit = owners((path for _change, path in found), folders)
        if hit:
            yield hit
