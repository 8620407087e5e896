"""Child processes: how devenv starts, identifies and stops them.

Every child gets a parent-death signal (Linux prctl), so a supervisor killed with -9 leaves
no orphans running; each runs in its own session so a terminal's Ctrl-C reaches only the
supervisor, which then stops children in order.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
    _prctl = None


@dataclass(frozen=True)
class ProcessSpec:
    """What to run for one component, and how it wants to be stopped."""

    name: str
    argv: tuple[str, ...]
    log_path: Path
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 5.0
    death_signal: int = signal.SIGTERM


def die_with_parent(sig: int):
    """A preexec_fn giving the child ``sig`` when the thread that spawned it dies."""
    death_signal = int(sig)

    def in_child() -> None:  # runs between fork and exec: keep it to one syscall
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, death_signal)

    return in_child


def spawn(spec: ProcessSpec) -> subprocess.Popen:
    """Starts the process with its output appended to its log file."""
    env = dict(os.environ)
    env.update(spec.env)

    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log_path, "ab", buffering=0) as log:
        return subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.cwd,
            env=env,
            user=spec.user,
            start_new_session=True,
            preexec_fn=die_with_parent(spec.death_signal),
            close_fds=True,
        )


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone.

    A pid plus its start time names a process unambiguously, so a stale record never makes
    devenv signal an unrelated process that reused the pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = raw.rsplit(")", 1)[-1].split()
    try:
        state, start = rest[0], int(rest[19])
    except (IndexError, ValueError):
        return None
    return None if state == "Z" else start


def is_alive(pid: int, started: int | None = None) -> bool:
    now = start_time(pid)
    if now is None:
        return False
    return started is None or now == started


def terminate(pid: int, started: int | None, *, sig: int = signal.SIGTERM, timeout: float = 5.0) -> bool:
    """Signals the process (and its session's group), waits up to ``timeout``, then kills it.
    Returns True when it is gone. A zombie counts as gone, and is left to its parent to reap:
    a ``waitpid`` here would take the status from the child's ``Popen``, whose ``wait()``
    then reports exit code 0 for a killed process."""
    if not is_alive(pid, started):
        return True
    signal_group(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid, started):
            return True
        time.sleep(0.02)
    signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if not is_alive(pid, started):
            return True
        time.sleep(0.02)
    return not is_alive(pid, started)


def signal_group(pid: int, sig: int) -> None:
    """``sig`` to ``pid``'s process group, or to ``pid`` alone when it leads none; gone is fine."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def describe_exit(returncode: int | None) -> str:
    """'exited with code 1' / 'killed by SIGKILL' in words a user reads."""
    if returncode is None:
        return "running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a log file (empty if there is none)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    return data.splitlines()[-lines:]


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux /proc); empty when it is gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as handle:
            return [int(p) for p in handle.read().split()]
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return []


async def run_quietly(argv: list[str], env: Mapping[str, str], timeout: float) -> int | None:
    """Runs ``argv`` in a session of its own, no input or output, from the event loop; its exit
    code, or None when it cannot start or outlives ``timeout`` seconds (its session is killed).

    Started with Python's ``subprocess`` (vfork) and awaited on a pidfd where Linux has them:
    the event loop's own spawn may fork the whole calling process (uvloop's does), milliseconds
    of copied page tables per run for a process the size of devenv's ``ecs``, and a container
    health check runs every few seconds. Elsewhere, asyncio's subprocess support."""
    import asyncio

    if not hasattr(os, "pidfd_open"):
        return await _run_quietly_asyncio(argv, env, timeout)
    try:
        process = subprocess.Popen(argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None
    try:
        await asyncio.wait_for(_exit_of(process), timeout)
    except asyncio.TimeoutError:
        signal_group(process.pid, signal.SIGKILL)
        await _exit_of(process)
        return None
    return process.returncode


async def _exit_of(process: subprocess.Popen) -> None:
    """Returns once ``process`` has exited (reaped: ``returncode`` is set)."""
    import asyncio

    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(process.pid)
    except OSError:  # a kernel without pidfds (before 5.3)
        await loop.run_in_executor(None, process.wait)
        return
    try:
        readable = loop.create_future()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            if process.poll() is None:
                await readable
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)
    process.wait()


async def _run_quietly_asyncio(argv: list[str], env: Mapping[str, str], timeout: float) -> int | None:
    import asyncio

    try:
        process = await asyncio.create_subprocess_exec(*argv, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
                                                       stdout=asyncio.subprocess.DEVNULL,
                                                       stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None
    try:
        return await asyncio.wait_for(process.wait(), timeout)
    except asyncio.TimeoutError:
        signal_group(process.pid, signal.SIGKILL)
        await process.wait()
        return None
