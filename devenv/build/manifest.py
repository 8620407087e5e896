"""The resolved environments of a stack, as the processes that start instances and tasks
read them: interpreter paths and sys.path entries, written once by ``up`` after building."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StateError
from .environments import StackEnvironments
from .store import EnvStore


@dataclass(frozen=True)
class FunctionRuntime:
    """How a function's instance is started: ``python -m awslambdaric`` with this interpreter,
    and these folders after the code folder on its path."""

    python: str
    version: str  # "3.12"
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceRuntime:
    """The virtualenv first on a service's tasks' PATH."""

    venv: str

    @property
    def bin(self) -> str:
        return os.path.join(self.venv, "bin")


@dataclass(frozen=True)
class Manifest:
    functions: dict[str, FunctionRuntime] = field(default_factory=dict)
    services: dict[str, ServiceRuntime] = field(default_factory=dict)
    emulator: str | None = None  # the emulator's virtualenv, when devenv installed it

    def function(self, name: str) -> FunctionRuntime:
        try:
            return self.functions[name]
        except KeyError:
            raise StateError(f"function {name} has no built environment",
                             hint="run `devenv up` (or `devenv build`) again") from None

    def service(self, name: str) -> ServiceRuntime | None:
        return self.services.get(name)


def resolve(envs: StackEnvironments, store: EnvStore) -> Manifest:
    functions = {
        name: FunctionRuntime(
            python=str(store.python(env.runtime)), version=env.runtime.python.minor,
            path=tuple([*((str(store.path(env.packages)),) if env.packages else ()),
                        *(str(p) for p in env.layer_paths),
                        *(str(store.path(spec)) for spec in env.layer_packages)]))
        for name, env in envs.functions.items()}
    services = {name: ServiceRuntime(str(store.path(env.venv))) for name, env in envs.services.items()}
    return Manifest(functions, services, str(store.path(envs.emulator)) if envs.emulator else None)


def write(path: Path, manifest: Manifest) -> None:
    body = {"functions": {k: {"python": v.python, "version": v.version, "path": list(v.path)}
                          for k, v in manifest.functions.items()},
            "services": {k: {"venv": v.venv} for k, v in manifest.services.items()},
            "emulator": manifest.emulator}
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(body, indent=1) + "\n")
    os.replace(temp, path)


def read(path: Path) -> Manifest:
    """The manifest ``up`` wrote; an empty one when there is none (a stack without functions
    or services, or one started before environments existed)."""
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        return Manifest()
    except ValueError as exc:
        raise StateError(f"{path} is not valid JSON ({exc})", hint="run `devenv up` again") from None
    return Manifest(
        {k: FunctionRuntime(v["python"], v["version"], tuple(v.get("path", ()))) for k, v in body["functions"].items()},
        {k: ServiceRuntime(v["venv"]) for k, v in body["services"].items()}, body.get("emulator"))
