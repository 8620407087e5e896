"""Where environments live and how they are built: a content-addressed folder per digest
(shared by every project and clone of this user, so a second stack builds nothing), built
with uv and its cache (offline once cached), several at a time, each under a file lock so
concurrent builders (two ``up``s, a test run) build it once.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from ..errors import BuildError
from .environments import EnvKind, EnvSpec, StackEnvironments

READY = ".devenv-ready"  # written last: a folder without it is a build that did not finish


def default_root(environ: Mapping[str, str]) -> Path:
    """``$DEVENV_ENV_DIR``, else ``$XDG_CACHE_HOME/devenv/envs``, else ``~/.cache/devenv/envs``."""
    if environ.get("DEVENV_ENV_DIR"):
        return Path(environ["DEVENV_ENV_DIR"])
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME") or str(Path.home()), ".cache")
    return Path(cache) / "devenv" / "envs"


class Installer(Protocol):
    """Builds one environment into an empty folder; output goes to ``log``."""

    def install(self, spec: EnvSpec, dest: Path, log: Path) -> None: ...


def find_uv() -> str | None:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


class UvInstaller:
    """uv: a virtualenv per VENV spec, ``uv pip install --target`` per TARGET spec. Uses the
    system's certificate store (machines behind a TLS-inspecting proxy trust its CA there), and
    retries offline from its cache when the index cannot be reached."""

    def __init__(self, uv: str, environ: Mapping[str, str]):
        self._uv = uv
        self._env = {**environ, "UV_SYSTEM_CERTS": "1", "UV_NATIVE_TLS": "1", "UV_NO_PROGRESS": "1",
                     "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": ""}

    def install(self, spec: EnvSpec, dest: Path, log: Path) -> None:
        reqs = [arg for r in spec.requirements for arg in ("-r", str(r.path))]
        if spec.kind is EnvKind.VENV:
            self._run(["venv", "--quiet", "--relocatable", "--python", spec.python.executable, str(dest)], log)
            if spec.packages or reqs:
                self._pip(["--python", str(dest / "bin" / "python"), *spec.packages, *reqs], log)
        else:
            self._pip(["--python", spec.python.executable, "--target", str(dest), *spec.packages, *reqs], log)

    def _pip(self, args: list[str], log: Path) -> None:
        try:
            self._run(["pip", "install", *args], log)
        except BuildError:
            self._run(["pip", "install", "--offline", *args], log)  # the index is out of reach: the cache

    def _run(self, args: list[str], log: Path) -> None:
        with open(log, "ab") as out:
            out.write(f"$ uv {' '.join(args)}\n".encode())
            out.flush()
            done = subprocess.run([self._uv, *args], stdout=out, stderr=subprocess.STDOUT, env=self._env,
                                  stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise BuildError(f"uv {args[0]} failed (exit code {done.returncode})", details=_tail(log))


class PipInstaller:
    """The fallback without uv: the interpreter's own venv module and devenv's pip."""

    def __init__(self, environ: Mapping[str, str]):
        self._env = dict(environ)

    def install(self, spec: EnvSpec, dest: Path, log: Path) -> None:
        reqs = [arg for r in spec.requirements for arg in ("-r", str(r.path))]
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
        if spec.kind is EnvKind.VENV:
            self._run([spec.python.executable, "-m", "venv", "--without-pip", str(dest)], log)
            if spec.packages or reqs:
                self._run([*pip, "--python", str(dest / "bin" / "python"), "install", *spec.packages, *reqs], log)
        else:
            self._run([*pip, "--python", spec.python.executable, "install", "--target", str(dest),
                       *spec.packages, *reqs], log)

    def _run(self, command: list[str], log: Path) -> None:
        with open(log, "ab") as out:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=self._env,
                                  stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise BuildError(f"{Path(command[0]).name} failed (exit code {done.returncode})", details=_tail(log))


def default_installer(environ: Mapping[str, str]) -> Installer:
    uv = find_uv()
    return UvInstaller(uv, environ) if uv else PipInstaller(environ)


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


class BuildState(Enum):
    STARTED = "started"
    BUILT = "built"
    FAILED = "failed"


@dataclass(frozen=True)
class BuildEvent:
    """Progress of one environment: started, built (with seconds) or failed (with the error)."""

    spec: EnvSpec
    state: BuildState
    seconds: float = 0.0
    error: BuildError | None = None


class EnvStore:
    """The folder of built environments, one sub-folder per digest. Constructing it does no I/O."""

    def __init__(self, root: Path, installer: Installer | None = None):
        self.root = root
        self._installer = installer

    def path(self, spec: EnvSpec) -> Path:
        return self.root / spec.digest

    def python(self, spec: EnvSpec) -> Path:
        """A virtualenv's interpreter."""
        return self.path(spec) / "bin" / "python"

    def is_built(self, spec: EnvSpec) -> bool:
        return (self.path(spec) / READY).is_file()

    def missing(self, specs: Sequence[EnvSpec]) -> list[EnvSpec]:
        """The specs not built yet, each digest once."""
        unique = {spec.digest: spec for spec in specs}
        return [spec for spec in unique.values() if not self.is_built(spec)]

    def build(self, spec: EnvSpec) -> Path:
        """Builds ``spec`` unless built; waits for a concurrent builder of the same digest."""
        self.root.mkdir(parents=True, exist_ok=True)
        dest = self.path(spec)
        with open(self.root / f"{spec.digest}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.is_built(spec):
                return dest
            if dest.exists():
                shutil.rmtree(dest)  # a build that died half way
            log = self.root / f"{spec.digest}.log"
            log.unlink(missing_ok=True)
            installer = self._installer or default_installer(os.environ)
            try:
                installer.install(spec, dest, log)
            except BuildError as exc:
                raise BuildError(f"building the environment of {spec.purpose or spec.digest} failed: {exc.message}",
                                 details=exc.details, hint=f"full log: {log}") from None
            (dest / READY).write_text(json.dumps({
                "purpose": spec.purpose, "python": spec.python.executable, "version": spec.python.version,
                "packages": list(spec.packages), "requirements": [str(r.path) for r in spec.requirements],
            }, indent=1) + "\n")
            return dest

    def build_all(self, specs: Sequence[EnvSpec], *, on_event: Callable[[BuildEvent], None] | None = None,
                  workers: int = 4) -> list[BuildEvent]:
        """Builds every missing spec, ``workers`` at a time; raises the first failure after all
        have finished (so one broken requirements file does not hide another)."""
        todo = self.missing(specs)
        if not todo:
            return []
        notify = on_event or (lambda event: None)

        def one(spec: EnvSpec) -> BuildEvent:
            notify(BuildEvent(spec, BuildState.STARTED))
            started = time.monotonic()
            try:
                self.build(spec)
            except BuildError as exc:
                event = BuildEvent(spec, BuildState.FAILED, time.monotonic() - started, error=exc)
            else:
                event = BuildEvent(spec, BuildState.BUILT, time.monotonic() - started)
            notify(event)
            return event

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo))), thread_name_prefix="build") as pool:
            events = list(pool.map(one, todo))
        for event in events:
            if event.error is not None:
                raise event.error
        return events

    def ensure(self, envs: StackEnvironments, **kwargs) -> list[BuildEvent]:
        return self.build_all(envs.specs, **kwargs)
