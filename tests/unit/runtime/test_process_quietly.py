"""run_quietly: a short command's exit code from the event loop, on asyncio's loop and uvloop's."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from devenv.runtime.process import run_quietly

LOOPS = ["asyncio", "uvloop"]


def on(loop: str, coroutine):
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine)
    return asyncio.run(coroutine)


@pytest.mark.parametrize("loop", LOOPS)
def test_the_exit_code_comes_back(loop):
    env = dict(os.environ)
    assert on(loop, run_quietly([sys.executable, "-c", "raise SystemExit(3)"], env, 10)) == 3
    assert on(loop, run_quietly(["true"], env, 10)) == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_a_command_that_cannot_start_is_none(loop):
    assert on(loop, run_quietly(["/nonexistent/check"], {}, 10)) is None


@pytest.mark.parametrize("loop", LOOPS)
def test_one_that_outlives_its_timeout_is_killed_with_its_session(loop, tmp_path):
    marker = tmp_path / "pid"
    script = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    started = time.monotonic()
    assert on(loop, run_quietly([sys.executable, "-c", script], dict(os.environ), 3.0)) is None
    assert time.monotonic() - started < 15
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not a zombie left behind
