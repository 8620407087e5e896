"""A real PostgreSQL server (standing in for Aurora PostgreSQL) with its data in .devenv/.

Created with initdb on first start, password (SCRAM) auth with a generated secret, bound to
127.0.0.1 only, no Unix socket. When devenv runs as root, the server runs as an
unprivileged user because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import signal
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..config.model import PostgresConfig
from ..errors import ComponentError, PrerequisiteError
from ..health import PostgresProbe, Probe
from ..runtime.component import ComponentKind
from ..runtime.ports import HOST
from ..runtime.process import ProcessSpec
from ..runtime.statedir import StateDir
from .binaries import PostgresBinaries

NAME = "postgres"
SECRET = "postgres-password"
# Server settings on both runtimes (compose/infra.yml repeats them). synchronous_commit=on:
# a commit is acknowledged only once its WAL is written out of Postgres's memory, so a
# committed row survives a crash of any Postgres process (off lost about one acknowledged
# insert per kill -9). fsync=off: that WAL reaches the kernel, not the disk; only an OS
# crash or power loss could lose (or corrupt) data, which a development stack accepts for speed.
SETTINGS = ("synchronous_commit=on", "fsync=off", "max_connections=200")


def settings_argv() -> tuple[str, ...]:
    """``-c name=value`` for each of SETTINGS."""
    return tuple(arg for setting in SETTINGS for arg in ("-c", setting))
UNPRIVILEGED_USERS = ("postgres", "nobody")


def unprivileged_user() -> str | None:
    """None when not root; else the account the server runs as."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PrerequisiteError(
        "running as root, and PostgreSQL refuses root; no unprivileged account found",
        hint="create one (useradd --system postgres) or run devenv as a normal user",
    )


def check_reachable(path: Path, user: str) -> None:
    """Every folder above ``path`` must be traversable by ``user`` or the server cannot
    reach its data; says which one is not."""
    account = pwd.getpwnam(user)
    for folder in list(reversed(path.parents)):
        if not folder.exists():
            break  # devenv creates the rest with modes it controls
        info = folder.stat()
        if info.st_uid == account.pw_uid:
            ok = info.st_mode & stat.S_IXUSR
        elif info.st_gid == account.pw_gid:
            ok = info.st_mode & stat.S_IXGRP
        else:
            ok = info.st_mode & stat.S_IXOTH
        if not ok:
            raise PrerequisiteError(
                f"postgres runs as '{user}' (devenv runs as root) but cannot enter {folder}",
                hint=f"chmod o+x {folder}, or put the project in a folder '{user}' can reach",
            )


@dataclass
class Postgres:
    """The Postgres component. Constructing it does no I/O."""

    config: PostgresConfig
    binaries: PostgresBinaries
    state: StateDir
    port: int
    user: str | None = None  # OS account to run as (None: the current one)
    on_ready: Callable[[bool], None] | None = None  # e.g. apply migrations and seed data
    name: str = NAME
    kind: ComponentKind = ComponentKind.INFRA
    depends_on: tuple[str, ...] = ()
    startup_timeout: float = 60.0

    @property
    def data_dir(self) -> Path:
        return self.state.data_dir(NAME)

    @property
    def password(self) -> str:
        return self.state.secret(SECRET)

    def url(self, database: str | None = None) -> str:
        return (f"postgresql://{quote(self.config.user)}:{quote(self.password, safe='')}"
                f"@{HOST}:{self.port}/{database or self.config.database}")

    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def prepare(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            existing = (self.data_dir / "PG_VERSION").read_text().strip()
            if existing != self.binaries.version:
                raise ComponentError(
                    NAME, f"data folder {self.data_dir} was made by PostgreSQL {existing}, "
                    f"but the server found is {self.binaries.version}",
                    hint="install that version, or wipe the data with `devenv down --volumes`")
            return
        self._initdb()

    def _initdb(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pwfile = self.data_dir.parent / ".postgres-pwfile"
        account = pwd.getpwnam(self.user) if self.user else None
        if account:
            check_reachable(self.data_dir, self.user)
            os.chown(self.data_dir, account.pw_uid, account.pw_gid)
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(self.password + "\n")
            if account:
                os.chown(pwfile, account.pw_uid, account.pw_gid)
            result = subprocess.run(
                [str(self.binaries.initdb), "-D", str(self.data_dir), f"--username={self.config.user}",
                 f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C",
                 "--no-instructions"],
                capture_output=True, text=True, user=self.user, cwd=self.data_dir.parent, timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).splitlines()[-15:]
            # A half-made cluster would block the next attempt: remove it.
            subprocess.run(["rm", "-rf", str(self.data_dir)], check=False)
            raise ComponentError(NAME, "initdb failed", log_tail=output)

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            name=NAME,
            argv=(str(self.binaries.postgres), "-D", str(self.data_dir), "-p", str(self.port),
                  "-c", f"listen_addresses={HOST}", "-c", "unix_socket_directories=",
                  *settings_argv(), "-c", "log_min_messages=warning", "-c", "log_connections=off"),
            log_path=self.state.log_file(NAME),
            cwd=self.data_dir.parent,
            env={"LC_ALL": "C"},
            user=self.user,
            stop_signal=signal.SIGINT,  # "fast" shutdown: rolls back clients, then checkpoints
            death_signal=signal.SIGINT,
            stop_timeout=15.0,
        )

    def probe(self) -> Probe:
        return PostgresProbe(self.url("postgres"))

    def after_ready(self, restarted: bool) -> None:
        """Creates the configured database when it does not exist yet."""
        import psycopg

        try:
            with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                      (self.config.database,)).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{self.config.database}"')
        except psycopg.Error as exc:
            raise ComponentError(NAME, f"could not create database {self.config.database}: {exc}") from None
        if self.on_ready is not None:
            self.on_ready(restarted)
