"""Watching code folders: which edits count, which root they belong to, and a real inotify
watch seeing an edit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devenv.runtime.watch import owners, relevant, watch


def test_bytecode_swap_files_and_hidden_folders_are_not_edits():
    assert relevant("/code/app.py")
    assert relevant("/code/pkg/data.json")
    for path in ("/code/__pycache__/app.cpython-311.pyc", "/code/app.pyc", "/code/.app.py.swp",
                 "/code/.git/index", "/code/.devenv/run/stack.json", "/code/app.py~"):
        assert not relevant(path), path


def test_an_edit_belongs_to_every_root_holding_it_and_no_other(tmp_path):
    a, b, ab = tmp_path / "a", tmp_path / "b", tmp_path / "ab"
    for folder in (a, b, ab):
        folder.mkdir()
    found = owners([str(a / "x.py"), str(ab / "y.py")], [a, b, ab])
    assert found == {a, ab}  # 'ab' is not inside 'a' although its name starts with it


def test_an_edit_made_once_the_watch_is_ready_is_seen(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("x = 1\n")
    seen: list[set[Path]] = []

    async def main():
        ready, done = asyncio.Event(), asyncio.Event()

        def on_change(folders):
            seen.append(folders)
            done.set()

        watcher = asyncio.create_task(watch([code], on_change, on_ready=ready.set))
        try:
            await asyncio.wait_for(ready.wait(), 5)
            (code / "app.py").write_text("x = 2\n")  # one edit, right after ready: no retry
            await asyncio.wait_for(done.wait(), 5)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    asyncio.run(main())
    assert seen == [{code}]
