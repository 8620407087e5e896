"""The supervisor lock: one supervisor per project, and a dead one never blocks the next.

The lock is held by the live supervisor for its whole life on an open file description;
the kernel drops it when that process dies, however it dies, so a lock file left behind is
never "stale" in a way that blocks ``up``. On Linux it is an open file description lock,
which ``is_held`` can query without taking it: a ``status`` at the moment a supervisor
starts must not make that supervisor's ``acquire`` fail. Elsewhere (no OFD locks) it is an
flock, and ``is_held`` can only test it by taking it for a moment.
"""

from __future__ import annotations

import fcntl
import os
import struct
from pathlib import Path

# struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid (padding left to the compiler's
# alignment, and zeros past the end: the kernel reads only its own size).
_FLOCK = "@hhqqi"
_OFD = hasattr(fcntl, "F_OFD_GETLK")


def _whole_file(lock_type: int) -> bytes:
    return struct.pack(_FLOCK, lock_type, os.SEEK_SET, 0, 0, 0) + bytes(16)


def _take(fd: int) -> bool:
    try:
        if _OFD:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _whole_file(fcntl.F_WRLCK))
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):  # EAGAIN, or EACCES from some file systems
        return False
    return True


class SupervisorLock:
    def __init__(self, path: Path):
        self._path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Takes the lock for this process; False when another process holds it."""
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _take(fd):
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with the last descriptor of its open file
            self._fd = None


def is_held(path: Path) -> bool:
    """True while a live process holds the lock at ``path``; on Linux without taking it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        if _OFD:
            answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _whole_file(fcntl.F_WRLCK))
            return struct.unpack_from(_FLOCK, answer)[0] != fcntl.F_UNLCK
        if not _take(fd):
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def holder_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or 0) or None
    except (FileNotFoundError, ValueError):
        return None
