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


def run_checks(file: Path | None) -> list[Check]:
    checks = [_python(), *_packages()]
    project = None
    try:
        from .config.loader import load_project

        project = load_project(file)
        checks.append(Check("devenv.yaml", True, f"{project.files[0]} is valid"))
    except DevenvError as exc:
        checks.append(Check("devenv.yaml", False, exc.message + "".join(f"\n    {d}" for d in exc.details),
                            exc.hint or "run `devenv validate` for details"))
    checks.append(_postgres(project))
    checks.append(_redis())
    if project is not None:
        checks.append(_state_dir(project.state_dir))
    checks.append(_docker())
    return checks


def _python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, sys.version.split()[0], None if ok else "devenv needs Python 3.11 or newer")


def _packages() -> list[Check]:
    wanted = [("moto", "moto[server]", False), ("boto3", "boto3", False), ("psycopg", "psycopg[binary]", False),
              ("awslambdaric", "awslambdaric (for Lambda functions)", True)]
    checks = []
    for module, package, optional in wanted:
        ok = importlib.util.find_spec(module) is not None
        checks.append(Check(f"package {module}", ok, "installed" if ok else "missing",
                            None if ok else f"pip install '{package.split()[0]}'", optional=optional))
    return checks


def _postgres(project) -> Check:
    from .infra.binaries import find_postgres
    from .infra.postgres import check_reachable, unprivileged_user

    version = None
    if project is not None and project.config.infra.postgres is not None:
        version = project.config.infra.postgres.version
    try:
        binaries = find_postgres(version)
        user = unprivileged_user()
        detail = f"PostgreSQL {binaries.version} at {binaries.bindir}"
        if user is not None:
            detail += f" (runs as '{user}' because devenv runs as root)"
            if project is not None:
                check_reachable(project.state_dir / "data" / "postgres", user)
        return Check("postgres", True, detail)
    except DevenvError as exc:
        return Check("postgres", False, exc.message, exc.hint)


def _redis() -> Check:
    from .infra.binaries import find_redis

    try:
        binary = find_redis()
        version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10).stdout
        return Check("redis", True, f"{version.split(' v=')[-1].split()[0] if ' v=' in version else version.strip()}"
                                    f" at {binary}")
    except DevenvError as exc:
        return Check("redis", False, exc.message, exc.hint)


def _state_dir(path: Path) -> Check:
    parent = path if path.exists() else path.parent
    ok = os.access(parent, os.W_OK)
    return Check("state folder", ok, f"{path} {'is writable' if ok else 'is not writable'}",
                 None if ok else f"make {parent} writable for this user")


def _docker() -> Check:
    docker = shutil.which("docker")
    if docker is None:
        return Check("docker", False, "not installed (only needed for `runtime: docker`)",
                     "install Docker Engine (apt-get install docker.io) or Docker Desktop", optional=True)
    try:
        result = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], capture_output=True,
                                text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("docker", False, f"client present, engine unreachable ({exc})", optional=True)
    if result.returncode != 0 or not result.stdout.strip():
        return Check("docker", False, "client present, no engine answering (only needed for `runtime: docker`)",
                     "start the engine: `dockerd &` or Docker Desktop", optional=True)
    return Check("docker", True, f"engine {result.stdout.strip()}", optional=True)
