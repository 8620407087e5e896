"""What a stack needs on this machine before it starts: decided from its config, then looked for.

``needs(config)`` is pure: the PostgreSQL server of the pinned version, redis-server, the
emulator's package (native runtime) or a Docker engine (docker runtime), and emulators the
runtime cannot run at all. ``check(needs, finders)`` looks for each through ``Finders`` (the
real ones, ``SystemFinders``, are infra/binaries.py and the Docker engine; unit tests pass
fakes) and says what it found or why it is missing; ``require`` turns what is missing into one
PrerequisiteError. ``devenv up`` requires them before it builds or starts anything, and
``devenv doctor`` shows the same results: no component is built to find out.
"""

from __future__ import annotations

import importlib.util
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .config.model import StackConfig
from .errors import DevenvError, PrerequisiteError
from .infra.emulator import not_available


@dataclass(frozen=True)
class PostgresServer:
    version: str | None = None  # the major version infra.postgres.version pins; None: the newest found
    name = "postgres"


@dataclass(frozen=True)
class RedisServer:
    name = "redis"


@dataclass(frozen=True)
class DockerEngine:
    name = "docker"


@dataclass(frozen=True)
class PythonPackage:
    module: str
    install: str  # what `pip install` takes
    purpose: str

    @property
    def name(self) -> str:
        return f"package {self.module}"


@dataclass(frozen=True)
class Unavailable:
    """Something the config asks for that devenv cannot run here at all (no finder helps)."""

    name: str
    error: DevenvError


Need = PostgresServer | RedisServer | DockerEngine | PythonPackage | Unavailable

MOTO = PythonPackage("moto", "moto[server]", "the emulator (emulator: moto)")
EVERY_KIND: tuple[Need, ...] = (PostgresServer(), RedisServer(), MOTO, DockerEngine())


def needs(config: StackConfig) -> list[Need]:
    """What the stack ``config`` describes needs on this machine, on its runtime."""
    found: list[Need] = []
    unavailable = not_available(config.emulator.kind, config.runtime)
    if unavailable is not None:
        found.append(Unavailable("emulator", unavailable))
    if config.runtime == "docker":
        found.append(DockerEngine())  # the servers run from images: nothing else on the host
        return found
    if config.infra.postgres is not None:
        found.append(PostgresServer(config.infra.postgres.version))
    if config.infra.redis is not None:
        found.append(RedisServer())
    if config.emulator.kind == "moto":
        found.append(MOTO)
    return found


def beside(needed: list[Need]) -> list[Need]:
    """One of each kind of prerequisite ``needed`` lacks: what `devenv doctor` also looks
    for, as optional (another stack, or another runtime, may need them)."""
    names = {n.name for n in needed}
    return [n for n in EVERY_KIND if n.name not in names]


class Finders(Protocol):
    """Looks for one kind of prerequisite: returns what was found (for people), or raises
    PrerequisiteError saying what is missing and how to install it."""

    def postgres(self, version: str | None) -> str: ...

    def redis(self) -> str: ...

    def docker(self) -> str: ...

    def package(self, module: str) -> str | None: ...  # where it is installed; None when it is not


@dataclass(frozen=True)
class Result:
    need: Need
    found: str | None  # what was found, when it was
    error: DevenvError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def check(wanted: list[Need], finders: Finders) -> list[Result]:
    """Looks for every need (each on its own: one missing does not hide another)."""
    return [_check(need, finders) for need in wanted]


def _check(need: Need, finders: Finders) -> Result:
    try:
        match need:
            case PostgresServer(version=version):
                return Result(need, finders.postgres(version))
            case RedisServer():
                return Result(need, finders.redis())
            case DockerEngine():
                return Result(need, finders.docker())
            case PythonPackage(module=module, install=install, purpose=purpose):
                where = finders.package(module)
                if where is None:
                    raise PrerequisiteError(f"the Python package {module} is not installed ({purpose})",
                                            hint=f"pip install '{install}'")
                return Result(need, where)
            case Unavailable(error=error):
                return Result(need, None, error)
    except PrerequisiteError as exc:
        return Result(need, None, exc)
    raise TypeError(f"not a prerequisite: {need!r}")  # pragma: no cover - the Need union is closed


def require(results: list[Result]) -> None:
    """Raises what is missing: the one error as it is, or several as one PrerequisiteError
    with a line (and fix) each."""
    missing = [r.error for r in results if r.error is not None]
    if len(missing) == 1:
        raise missing[0]
    if missing:
        raise PrerequisiteError(f"{len(missing)} prerequisites are missing",
                                details=[e.message + (f" (fix: {e.hint})" if e.hint else "") for e in missing],
                                hint="`devenv doctor` checks every prerequisite")


class SystemFinders:
    """This machine's: infra/binaries.py for the servers, the Docker SDK for the engine.
    ``versions`` also asks redis-server its version (doctor; ~14 ms that `up` does not need)."""

    def __init__(self, *, versions: bool = False):
        self.versions = versions

    def postgres(self, version: str | None) -> str:
        from .infra.binaries import find_postgres

        binaries = find_postgres(version)
        return f"PostgreSQL {binaries.version} at {binaries.bindir}"

    def redis(self) -> str:
        from .infra.binaries import find_redis

        binary = find_redis()
        if not self.versions:
            return str(binary)
        try:
            out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        version = out.split(" v=")[-1].split()[0] if " v=" in out else "redis-server"
        return f"{version} at {binary}"

    def docker(self) -> str:
        from .runtime.docker import connect

        info = connect().version()
        return (f"engine {info.get('Version', '?')} (API {info.get('ApiVersion', '?')}, "
                f"{info.get('Os', '?')}/{info.get('Arch', '?')})")

    def package(self, module: str) -> str | None:
        spec = importlib.util.find_spec(module)
        return None if spec is None or spec.origin is None else f"installed at {Path(spec.origin).parent}"

