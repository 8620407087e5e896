"""The REPORT line's Max Memory Used: a process's VmHWM through a kept /proc descriptor."""

from __future__ import annotations

import math
import os
import subprocess
import sys

from devenv.compute.lambda_.runtime import PeakMemory


def vm_hwm_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return math.ceil(kb / 1024)


def test_the_peak_follows_the_process_and_a_gone_one_reads_zero():
    # The child says when its start-up is over (its peak still grew while Python started, so a
    # read then could differ from the next one), then grows on cue.
    child = subprocess.Popen([sys.executable, "-c", "import sys; print('ready', flush=True); sys.stdin.readline(); "
                              "b = bytearray(64 << 20); print('grown', flush=True); sys.stdin.readline()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    peak = PeakMemory()
    try:
        assert child.stdout.readline() == "ready\n"
        low = vm_hwm_mb(child.pid)
        before = peak.mb(child.pid)
        assert low <= before <= vm_hwm_mb(child.pid) and before > 0
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline() == "grown\n"
        after = peak.mb(child.pid)  # the same kept descriptor, read again
        assert after >= before + 60 and after == vm_hwm_mb(child.pid)
    finally:
        child.stdin.close()  # its reads end, whatever step it is at, and it exits
        child.wait(timeout=30)
    assert peak.mb(child.pid) == 0  # reaped: the descriptor reads ESRCH and is closed
    assert peak._fds == {}
    assert peak.mb(None) == 0


def test_forget_closes_the_descriptor():
    peak = PeakMemory()
    assert peak.mb(os.getpid()) > 0
    fd = peak._fds[os.getpid()]
    peak.forget(os.getpid())
    try:
        os.fstat(fd)
        raise AssertionError("the descriptor is still open")
    except OSError:
        pass
