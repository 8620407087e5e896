"""What each function and service runs in, decided from the config alone (no I/O but
reading the requirements files named): content-addressed environment specs, and where a
function's or service's code looks for its packages.

A function gets what AWS's Python runtime holds (awslambdaric and the boto3 it bundles), its
own requirements.txt (installed apart, first on the path, as a deployment package's
packages are in /var/task) and its layers (as /opt/python). A service gets exactly the
requirements file its Dockerfile installs. Nothing of devenv's own environment leaks in.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..config.model import FunctionConfig, ServiceConfig, StackConfig
from ..errors import ConfigError, ConfigIssue
from .pythons import Python, PythonFinder, how_to_get, runtime_version

FORMAT = 1  # bump when the way environments are built changes: every digest changes with it

# What AWS's Python runtimes hold besides the standard library: the runtime interface client
# and the AWS SDK (one pinned release here; AWS updates its bundled boto3 from time to time).
LAMBDA_RUNTIME_PACKAGES: tuple[str, ...] = ("awslambdaric==4.2.2", "boto3==1.44.18")
REQUIREMENTS_FILE = "requirements.txt"

# The emulators devenv installs into environments of their own (moto runs in devenv's):
# the pinned release, the packages beside it and the Python it needs (None: devenv's own).
MINISTACK_VERSION = "1.5.33"
LOCALSTACK_VERSION = "4.14.0"  # the last LocalStack release that runs without an account


@dataclass(frozen=True)
class EmulatorPackage:
    package: str  # the distribution, pinned with ``==<version>``
    version: str
    python: str | None = None  # the minor version it runs on; None: devenv's own
    pins: tuple[str, ...] = ()  # pins its own requirements leave too loose
    extras: str = ""  # "[runtime]"

    def packages(self, version: str | None) -> tuple[str, ...]:
        return (f"{self.package}{self.extras}=={version or self.version}", *self.pins)


EMULATOR_PACKAGES: dict[str, EmulatorPackage] = {
    "ministack": EmulatorPackage("ministack", MINISTACK_VERSION),
    # localstack-core 4.14 runs on 3.13 only, and breaks with cbor2 6 and pyOpenSSL 25; its
    # `runtime` extra is what the server (not the CLI) needs: hypercorn, moto-ext, ...
    "localstack": EmulatorPackage("localstack-core", LOCALSTACK_VERSION, "3.13", ("cbor2<6", "pyopenssl<25"),
                                  "[runtime]"),
}
# What an instance or task finds on PATH after its environment's bin/: the system's folders,
# as in a container image, never the user's shell PATH (whose `python` may be any interpreter).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def isolated_path(bin_dir: str | None) -> str:
    """PATH for a process of an environment whose executables are in ``bin_dir``."""
    return f"{bin_dir}:{SYSTEM_PATH}" if bin_dir else SYSTEM_PATH


class EnvKind(Enum):
    VENV = "venv"  # a virtualenv of the interpreter: python, bin/ and site-packages
    TARGET = "target"  # a folder of packages for another environment's sys.path (pip --target)


@dataclass(frozen=True)
class Requirements:
    """A requirements file, by content: the content is what the digest covers."""

    path: Path
    text: str

    @property
    def lines(self) -> list[str]:
        """What installs: the lines without comments and blanks (a comment edit rebuilds nothing)."""
        stripped = (line.split(" #", 1)[0].strip() for line in self.text.splitlines())
        return [line for line in stripped if line and not line.startswith("#")]


@dataclass(frozen=True)
class EnvSpec:
    """One environment to build, named by the digest of everything that goes into it."""

    kind: EnvKind
    python: Python
    packages: tuple[str, ...] = ()
    requirements: tuple[Requirements, ...] = ()
    purpose: str = ""  # for people: "runtime python3.12", "placement-service", ...

    @property
    def digest(self) -> str:
        body = {"format": FORMAT, "kind": self.kind.value, "python": [self.python.executable, self.python.version],
                "packages": list(self.packages), "requirements": [r.lines for r in self.requirements]}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class FunctionEnvironment:
    """What a function's instances run on: the runtime's virtualenv, then (in sys.path order)
    the function's own packages and its layers' folders."""

    function: str
    runtime: EnvSpec
    packages: EnvSpec | None = None
    layer_paths: tuple[Path, ...] = ()
    layer_packages: tuple[EnvSpec, ...] = ()

    @property
    def specs(self) -> tuple[EnvSpec, ...]:
        return (self.runtime, *((self.packages,) if self.packages else ()), *self.layer_packages)


@dataclass(frozen=True)
class ServiceEnvironment:
    """The virtualenv whose bin/ comes first on a service's tasks' PATH."""

    service: str
    venv: EnvSpec
    requirements_from: str | None = None  # where the requirements file was found, for people


@dataclass(frozen=True)
class StackEnvironments:
    functions: Mapping[str, FunctionEnvironment] = field(default_factory=dict)
    services: Mapping[str, ServiceEnvironment] = field(default_factory=dict)
    emulator: EnvSpec | None = None  # the emulator's own virtualenv (ministack, LocalStack)

    @property
    def specs(self) -> list[EnvSpec]:
        """Every distinct environment the stack needs, each once."""
        seen: dict[str, EnvSpec] = {}
        if self.emulator is not None:
            seen[self.emulator.digest] = self.emulator
        for env in self.functions.values():
            for spec in env.specs:
                seen.setdefault(spec.digest, spec)
        for env in self.services.values():
            seen.setdefault(env.venv.digest, env.venv)
        return list(seen.values())


# ---------------------------------------------------------------- Dockerfiles

_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(?:[\w.-]+/)*python:(\d+\.\d+)", re.IGNORECASE | re.MULTILINE)
_COPY = re.compile(r"^\s*(?:COPY|ADD)\s+(?:--\S+\s+)*(.+)$", re.IGNORECASE | re.MULTILINE)


def dockerfile_python(text: str) -> str | None:
    """The Python minor version of a Dockerfile's ``FROM python:X.Y...`` base, if it has one."""
    match = _FROM.search(text)
    return match.group(1) if match else None


def dockerfile_requirements(text: str) -> str | None:
    """The requirements file a Dockerfile copies in to install (``COPY x/requirements.txt ...``),
    as a path in its build context."""
    for match in _COPY.finditer(text):
        parts = match.group(1).split()
        for source in parts[:-1]:
            if re.search(r"requirements[^/]*\.txt$", source):
                return source.removeprefix("./")
    return None


# ---------------------------------------------------------------- planning


def plan(config: StackConfig, root: Path, finder: PythonFinder, *, own_python: str | None = None,
         label: str = "devenv.yaml") -> StackEnvironments:
    """Every function's and service's environment. Raises ConfigError naming each function or
    service whose Python is not on this machine, with how to get it."""
    issues: list[ConfigIssue] = []
    functions: dict[str, FunctionEnvironment] = {}
    services: dict[str, ServiceEnvironment] = {}
    for name, fn in config.functions.items():
        minor = runtime_version(fn.runtime)
        python = finder.find(minor)
        if python is None:
            issues.append(ConfigIssue(label, None, f"functions.{name}.runtime",
                                      f"{fn.runtime}: no CPython {minor} on this machine; {how_to_get(minor)}"))
            continue
        functions[name] = function_environment(name, fn, root, python)
    for name, svc in config.services.items():
        if svc.image is not None and svc.build is None and svc.command is None:
            continue  # runs only on the docker runtime
        try:
            minor, requirements, source = service_inputs(svc, root, own_python)
        except OSError as exc:
            issues.append(ConfigIssue(label, None, f"services.{name}", f"cannot read {exc.filename}: {exc.strerror}"))
            continue
        python = finder.find(minor)
        if python is None:
            issues.append(ConfigIssue(label, None, f"services.{name}.python",
                                      f"no CPython {minor} on this machine (the service's Python, from "
                                      f"{'its python field' if svc.python else 'its Dockerfile'}); {how_to_get(minor)}"))
            continue
        services[name] = ServiceEnvironment(
            name, EnvSpec(EnvKind.VENV, python, requirements=requirements, purpose=name), source)
    emulator = None
    try:
        emulator = emulator_environment(config, finder, own_python, label)
    except ConfigError as exc:
        issues.extend(exc.issues)
    if issues:
        raise ConfigError(issues, hint="`devenv doctor` lists the Pythons it found")
    return StackEnvironments(functions, services, emulator)


def emulator_environment(config: StackConfig, finder: PythonFinder, own_python: str | None = None,
                         label: str = "devenv.yaml") -> EnvSpec | None:
    """The virtualenv the configured emulator runs from, when it is one devenv installs
    (native runtime: ministack, LocalStack); None for moto, which runs in devenv's own."""
    wanted = EMULATOR_PACKAGES.get(config.emulator.kind)
    if wanted is None or config.runtime != "native":
        return None
    minor = wanted.python or own_python or _own_minor()
    python = finder.find(minor)
    if python is None:
        raise ConfigError([ConfigIssue(label, None, "emulator", (
            f"{config.emulator.kind}: {wanted.package} {config.emulator.version or wanted.version} runs on "
            f"CPython {minor}, and there is no CPython {minor} on this machine; {how_to_get(minor)}"))])
    return EnvSpec(EnvKind.VENV, python, packages=wanted.packages(config.emulator.version),
                   purpose=f"emulator {config.emulator.kind}")


def function_environment(name: str, fn: FunctionConfig, root: Path, python: Python) -> FunctionEnvironment:
    runtime = EnvSpec(EnvKind.VENV, python, packages=LAMBDA_RUNTIME_PACKAGES, purpose=f"runtime {fn.runtime}")
    code = (root / fn.code).resolve()
    packages = None
    own = _read_requirements(code / REQUIREMENTS_FILE)
    if own is not None:
        packages = EnvSpec(EnvKind.TARGET, python, requirements=(own,), purpose=f"{name} packages")
    layer_paths: list[Path] = []
    layer_packages: list[EnvSpec] = []
    for layer in fn.layers:
        folder = (root / layer).resolve()
        # A layer's zip unpacks under /opt; Python finds /opt/python and its site-packages.
        layer_paths.extend([folder / "python" / "lib" / f"python{python.minor}" / "site-packages", folder / "python"])
        wanted = _read_requirements(folder / REQUIREMENTS_FILE)
        if wanted is not None:
            layer_packages.append(EnvSpec(EnvKind.TARGET, python, requirements=(wanted,),
                                          purpose=f"layer {layer}"))
    return FunctionEnvironment(name, runtime, packages, tuple(layer_paths), tuple(layer_packages))


def service_inputs(svc: ServiceConfig, root: Path,
                   own_python: str | None) -> tuple[str, tuple[Requirements, ...], str | None]:
    """A service's Python minor version and requirements: its own fields when given, else what
    its Dockerfile uses (one source of truth for both runtimes), else devenv's Python and none.
    A service without ``build`` runs from the project root, where its paths start."""
    context = (root / (svc.build or ".")).resolve()
    dockerfile = context / svc.dockerfile
    text = dockerfile.read_text(errors="replace") if dockerfile.is_file() else ""
    minor = svc.python or dockerfile_python(text) or own_python or _own_minor()
    relative = svc.requirements or dockerfile_requirements(text)
    if relative is None:
        return minor, (), None
    found = _read_requirements(context / relative, required=True)
    return minor, (found,), relative


def _read_requirements(path: Path, *, required: bool = False) -> Requirements | None:
    if not required and not path.is_file():
        return None
    return Requirements(path, path.read_text())


def _own_minor() -> str:
    import sys

    return f"{sys.version_info.major}.{sys.version_info.minor}"
