"""Stopping a real child process while the supervisor's thread waits on it: the exit status
reaches the waiter, whoever signals."""

from __future__ import annotations

import signal
import sys
import threading

import pytest

from devenv.health import wait_until
from devenv.runtime.process import ProcessSpec
from devenv.supervisor import ProcessLauncher

pytestmark = pytest.mark.integration

STUBBORN = ("import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")


def stubborn(tmp_path):
    log = tmp_path / "stubborn.log"
    handle = ProcessLauncher().spawn(ProcessSpec("stubborn", (sys.executable, "-c", STUBBORN), log))
    assert wait_until(lambda: log.exists() and "ready" in log.read_text(), timeout=10)
    return handle


@pytest.mark.parametrize("attempt", range(5))
def test_a_component_killed_on_stop_is_recorded_as_killed(tmp_path, attempt):
    # stop() used to reap the child itself (waitpid) behind Popen's back; Popen.wait() then got
    # ECHILD and reported 0: the record said "exited with code 0" for a killed component.
    handle = stubborn(tmp_path)
    handle.stop(signal.SIGTERM, timeout=0.1)  # ignored: killed after the timeout
    assert handle.wait() == -signal.SIGKILL


def test_the_supervisor_s_waiting_thread_gets_the_status(tmp_path):
    handle = stubborn(tmp_path)
    codes: list[int] = []
    waiter = threading.Thread(target=lambda: codes.append(handle.wait()))
    waiter.start()
    handle.stop(signal.SIGTERM, timeout=0.1)
    waiter.join(10)
    assert codes == [-signal.SIGKILL]
