"""Which CPython runs a function or a service: Lambda's runtime names, and finding an
interpreter of a given minor version on this machine (PATH, pyenv, uv-managed).

A function that declares ``python3.12`` runs on a real 3.12, as on AWS; when none is on the
machine the user is told how to get one, never silently given another version.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path



def runtime_version(runtime: str) -> str:
    """'python3.12' -> '3.12'."""
    return runtime.removeprefix("python")


@dataclass(frozen=True)
class Python:
    """One CPython interpreter found on the machine."""

    executable: str
    version: str  # full: "3.12.1"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def how_to_get(minor: str) -> str:
    """What a user can do when no CPython ``minor`` is on the machine."""
    return (f"install one (`pyenv install {minor}`, `uv python install {minor}`, or your system's "
            f"python{minor} package) or use `runtime: docker`")


Probe = Callable[[str], "Python | None"]


def probe(executable: str) -> Python | None:
    """Asks an executable what it is (the base interpreter, for a virtualenv's); None unless it
    runs and is CPython."""
    try:
        out = subprocess.run([executable, "-I", "-c",
                              "import sys; print(sys.implementation.name, '%d.%d.%d' % sys.version_info[:3], "
                              "getattr(sys, '_base_executable', '') or sys.executable)"],
                             capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.strip().split(" ", 2)
    if out.returncode != 0 or len(parts) != 3 or parts[0] != "cpython":
        return None
    # A virtualenv's interpreter stands for its base: environments are built from the base, so
    # two clones of a project (each with its own .venv) share them.
    return Python(os.path.realpath(parts[2]), parts[1])


def _version_key(path: Path) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", path.name)
    return tuple(int(n) for n in numbers)


class PythonFinder:
    """Finds a CPython by minor version. Looks, in order, at devenv's own interpreter, the
    ``python3.X`` executables on PATH (skipping pyenv's shims, which only run a version
    pyenv has selected), pyenv's versions and uv's managed Pythons; the newest patch release
    wins within each source. Results are cached for the finder's life."""

    def __init__(self, environ: Mapping[str, str] | None = None, *, probe: Probe = probe,
                 own: str | None = None, home: Path | None = None):
        self._env = os.environ if environ is None else environ
        self._probe = probe
        self._own = sys.executable if own is None else own
        self._home = Path(self._env.get("HOME", str(Path.home()))) if home is None else home
        self._found: dict[str, Python | None] = {}

    def candidates(self, minor: str) -> list[str]:
        """Executables that may be CPython ``minor``, best first (not yet probed)."""
        found: list[str] = []
        if self._own and f"{sys.version_info.major}.{sys.version_info.minor}" == minor:
            found.append(self._own)
        pyenv_root = Path(self._env.get("PYENV_ROOT", str(self._home / ".pyenv")))
        for folder in self._env.get("PATH", "").split(os.pathsep):
            if not folder or Path(folder) == pyenv_root / "shims" or folder.rstrip("/").endswith("/shims"):
                continue
            found.append(os.path.join(folder, f"python{minor}"))
        found.extend(str(p / "bin" / f"python{minor}") for p in self._newest_first(pyenv_root / "versions", minor))
        uv_root = Path(self._env.get("UV_PYTHON_INSTALL_DIR",
                                     str(Path(self._env.get("XDG_DATA_HOME", str(self._home / ".local/share")))
                                         / "uv" / "python")))
        found.extend(str(p / "bin" / f"python{minor}")
                     for p in self._newest_first(uv_root, minor, prefix="cpython-"))
        unique: list[str] = []
        for path in found:
            if path not in unique:
                unique.append(path)
        return unique

    @staticmethod
    def _newest_first(folder: Path, minor: str, *, prefix: str = "") -> list[Path]:
        try:
            entries = [p for p in folder.iterdir()
                       if re.match(re.escape(prefix + minor) + r"(\.|$)", p.name)]
        except OSError:
            return []
        return sorted(entries, key=_version_key, reverse=True)

    def find(self, minor: str) -> Python | None:
        """The first candidate that really is CPython ``minor``; None when there is none."""
        if minor not in self._found:
            self._found[minor] = next(
                (python for python in (self._probe(path) for path in self.candidates(minor)
                                       if os.access(path, os.X_OK))
                 if python is not None and python.minor == minor), None)
        return self._found[minor]

    def find_all(self, minors: Iterable[str]) -> dict[str, Python | None]:
        return {minor: self.find(minor) for minor in minors}
