"""Secrets in the state folder, made and read by processes at the same moment (the
supervisor, a `devenv env`, a test session): nobody sees a partial value and all agree."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from devenv.runtime.statedir import StateDir

pytestmark = pytest.mark.integration

PROCESSES = 6


def _take(root: str, start, results) -> None:
    start.wait(10)
    try:
        results.put(StateDir(Path(root)).secret("postgres-password"))
    except Exception as exc:  # reported, not swallowed: a creator that lost the race used to crash
        results.put(f"{type(exc).__name__}: {exc}")


def test_concurrent_readers_and_creators_agree_on_one_complete_value(tmp_path):
    context = multiprocessing.get_context("fork")
    for round_ in range(20):
        state = StateDir(tmp_path / f"round-{round_}")
        state.ensure()
        start, results = context.Barrier(PROCESSES), context.Queue()
        workers = [context.Process(target=_take, args=(str(state.root), start, results)) for _ in range(PROCESSES)]
        for worker in workers:
            worker.start()
        values = [results.get(timeout=20) for _ in workers]
        for worker in workers:
            worker.join(10)
        assert len(set(values)) == 1 and len(values[0]) == 32, values  # 24 bytes, URL-safe base64
        assert (state.secrets / "postgres-password").read_text() == values[0] + "\n"


def test_while_a_secret_is_written_its_name_does_not_exist_yet(tmp_path, monkeypatch):
    # Created empty (O_EXCL) and then written, a secret read at that moment was "".
    from devenv.runtime import statedir

    state = StateDir(tmp_path)
    state.ensure()
    path = state.secrets / "redis-password"
    seen = []

    def fdopen(fd, *args, **kwargs):  # a reader looks while the value is being written
        seen.append(path.read_text() if path.exists() else None)
        return open(fd, *args, **kwargs)

    monkeypatch.setattr(statedir.os, "fdopen", fdopen)
    value = state.secret("redis-password")
    monkeypatch.undo()
    assert seen == [None] and len(value) == 32 and state.secret("redis-password") == value
    assert oct(path.stat().st_mode & 0o777) == "0o600" and sorted(p.name for p in state.secrets.iterdir()) == [
        "redis-password"]


def test_a_mountable_secret_is_readable_by_the_container_s_user(tmp_path):
    state = StateDir(tmp_path)
    state.ensure()
    made = state.mountable("redis.conf", "requirepass x\n")
    assert made.read_text() == "requirepass x\n" and oct(made.stat().st_mode & 0o777) == "0o644"
    assert oct(state.mountable("pg").stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in state.secrets.iterdir()) == ["pg", "redis.conf"]
