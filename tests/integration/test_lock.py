"""The supervisor lock between real processes: checking it never takes it, and a holder
killed with SIGKILL leaves it free."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from devenv.runtime.lock import SupervisorLock, holder_pid, is_held

pytestmark = pytest.mark.integration

CHECKER = """\
import sys
from pathlib import Path
from devenv.runtime.lock import is_held
path = Path(sys.argv[1])
is_held(path)
print("checking", flush=True)
while True:
    is_held(path)
"""

HOLDER = """\
import sys
from pathlib import Path
from devenv.runtime.lock import SupervisorLock
assert SupervisorLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
sys.stdin.read()
"""


def start(script: str, path, expect: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == expect + "\n"  # the child is at work before we go on
    return child


def test_checking_the_lock_in_a_loop_never_refuses_an_acquire(tmp_path):
    # A `status` or dashboard check used to take the lock for a moment: 1,274 of 2,000 refused.
    path = tmp_path / "supervisor.lock"
    path.touch()
    checker = start(CHECKER, path, "checking")
    try:
        refused = 0
        for _ in range(2000):
            lock = SupervisorLock(path)
            if lock.acquire():
                lock.release()
            else:
                refused += 1
        assert checker.poll() is None  # checked all along
    finally:
        checker.kill()
        checker.wait()
    assert refused == 0


def test_a_holder_killed_with_sigkill_frees_the_lock(tmp_path):
    path = tmp_path / "supervisor.lock"
    assert not is_held(path)
    holder = start(HOLDER, path, "held")
    try:
        assert is_held(path) and holder_pid(path) == holder.pid
        assert not SupervisorLock(path).acquire()
        assert is_held(path)  # a refused acquire leaves the holder's lock alone
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert not is_held(path)
    lock = SupervisorLock(path)
    assert lock.acquire() and is_held(path)
    lock.release()
    assert not is_held(path)
