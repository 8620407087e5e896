"""`devenv doctor`: every prerequisite checked, each failure with how to fix it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import DevenvError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None
    optional: bool = False


def run_checks(file: Path | None, *, finders=None) -> list[Check]:
    """Every check, in order; ``finders`` (default: this machine's) look for the prerequisites."""
    checks = [_python(), *_packages()]
    project = None
    try:
        from .config.loader import load_project

        project = load_project(file)
        checks.append(Check("devenv.yaml", True, f"{project.files[0]} is valid"))
    except DevenvError as exc:
        checks.append(Check("devenv.yaml", False, exc.message + "".join(f"\n    {d}" for d in exc.details),
                            exc.hint or "run `devenv validate` for details"))
    checks.extend(_prerequisites(project, finders))
    if project is not None:
        checks.append(_state_dir(project.state_dir))
        if project.config.runtime == "native":
            checks.extend(_environments(project))
        if project.config.runtime == "docker" or any(c.name == "docker" and c.ok for c in checks):
            checks.append(_docker_images(project))
    checks.append(_compose())
    return checks


def _prerequisites(project, finders) -> list[Check]:
    """What `devenv up` requires (prerequisites.py, the same checks), then one of each other
    kind as optional; without a valid devenv.yaml, a default native stack's needs."""
    from .prerequisites import MOTO, PostgresServer, RedisServer, SystemFinders, beside, check, needs

    needed = needs(project.config) if project is not None else [PostgresServer(), RedisServer(), MOTO]
    checks = []
    for result in check([*needed, *beside(needed)], finders or SystemFinders(versions=True)):
        optional = result.need not in needed
        if result.error is not None:
            why = " (not needed by this stack)" if optional and project is not None else ""
            checks.append(Check(result.need.name, False, result.error.message + why, result.error.hint, optional))
        elif result.need.name == "postgres":
            checks.append(_postgres_user(project, result.found or "", optional))
        else:
            checks.append(Check(result.need.name, True, result.found or "found", optional=optional))
    return checks


EMULATOR_MODULES = {"localstack": "localstack"}  # what each emulator's environment must import


def _environments(project) -> list[Check]:
    """Each function's and service's environment: its Python found, built, and able to import
    what it is started with (awslambdaric; a service's `python -m MODULE`)."""
    from .build.environments import plan
    from .build.pythons import PythonFinder
    from .build.store import EnvStore, default_root

    try:
        envs = plan(project.config, project.root, PythonFinder(os.environ))
    except DevenvError as exc:
        return [Check("environments", False, exc.message + "".join(f"\n    {d}" for d in exc.details), exc.hint)]
    store = EnvStore(default_root(os.environ))
    checks = []
    wanted = [(f"function {name}", env.runtime, env.specs, ["awslambdaric", "boto3"])
              for name, env in envs.functions.items()]
    for name, env in envs.services.items():
        command = project.config.services[name].command or []
        modules = [command[2]] if len(command) > 2 and command[0].startswith("python") and command[1] == "-m" else []
        wanted.append((f"service {name}", env.venv, [env.venv], modules))
    if envs.emulator is not None:
        kind = project.config.emulator.kind
        wanted.append((f"emulator {kind}", envs.emulator, [envs.emulator], [EMULATOR_MODULES.get(kind, kind)]))
    for label, main, specs, modules in wanted:
        detail = f"Python {main.python.version} ({main.python.executable})"
        missing = store.missing(specs)
        if missing:
            checks.append(Check(label, False, f"{detail}; environment not built yet",
                                "`devenv build` (or `devenv up`, which builds what is missing)"))
            continue
        failed = _cannot_import(str(store.python(main)), modules)
        checks.append(Check(label, failed is None, f"{detail}; built" if failed is None else f"{detail}; {failed}",
                            None if failed is None else "add it to the requirements file, then `devenv build`"))
    return checks


def _cannot_import(python: str, modules: list[str]) -> str | None:
    for module in modules:
        done = subprocess.run([python, "-I", "-c", f"import {module}"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["failed"])[-1]
            return f"cannot import {module}: {last}"
    return None


def _python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, sys.version.split()[0], None if ok else "devenv needs Python 3.11 or newer")


def _packages() -> list[Check]:
    wanted = [("boto3", "boto3", False), ("psycopg", "psycopg[binary]", False),
              ("awslambdaric", "awslambdaric (for Lambda functions)", True)]
    checks = []
    for module, package, optional in wanted:
        ok = importlib.util.find_spec(module) is not None
        checks.append(Check(f"package {module}", ok, "installed" if ok else "missing",
                            None if ok else f"pip install '{package.split()[0]}'", optional=optional))
    return checks


def _postgres_user(project, found: str, optional: bool) -> Check:
    """Under root, Postgres runs as an unprivileged user, who must reach the data folder."""
    from .infra.postgres import check_reachable, unprivileged_user

    user = unprivileged_user()
    if user is None:
        return Check("postgres", True, found, optional=optional)
    detail = f"{found} (runs as '{user}' because devenv runs as root)"
    try:
        if project is not None:
            check_reachable(project.state_dir / "data" / "postgres", user)
    except DevenvError as exc:
        return Check("postgres", False, f"{detail}; {exc.message}", exc.hint, optional)
    return Check("postgres", True, detail, optional=optional)


def _state_dir(path: Path) -> Check:
    parent = path if path.exists() else path.parent
    ok = os.access(parent, os.W_OK)
    return Check("state folder", ok, f"{path} {'is writable' if ok else 'is not writable'}",
                 None if ok else f"make {parent} writable for this user")


def _docker_images(project) -> Check:
    """The images the project's Docker runtime runs that the engine does not have."""
    from .infra.containers import images_needed
    from .runtime.docker import connect

    import docker.errors

    optional = project.config.runtime != "docker"
    try:
        client = connect()
    except DevenvError as exc:
        return Check("docker images", False, f"not checked: {exc.message}", exc.hint, optional=optional)
    missing = []
    for image, setting in images_needed(project.config):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(f"{image} (set with {setting})")
    return Check("docker images", not missing, "all present" if not missing else "missing: " + ", ".join(missing),
                 None if not missing else "they are pulled on first `up` when a registry is reachable; "
                 "without one, build or tag them locally (.ci/docker-setup does so on Debian)",
                 optional=optional)


def _compose() -> Check:
    compose = shutil.which("docker-compose")
    return Check("docker-compose", compose is not None,
                 f"at {compose}" if compose else "not installed (only for running compose/infra.yml by hand)",
                 None if compose else "apt-get install docker-compose, or use `docker compose`", optional=True)
