"""Versioned SQL migrations: each file of the migrations folder applied once, in filename
order, inside a transaction, and recorded (with a checksum) in ``devenv_migrations``.

A migration changed after it was applied is an error, as with Flyway or Alembic: the
database would otherwise silently differ from what the files say.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import DevenvError

TABLE = "devenv_migrations"


class MigrationError(DevenvError):
    exit_code = 9


@dataclass(frozen=True)
class Migration:
    version: str  # the file name, e.g. 001_init.sql
    path: Path
    checksum: str

    @classmethod
    def read(cls, path: Path) -> "Migration":
        return cls(path.name, path, hashlib.sha256(path.read_bytes()).hexdigest())


def discover(folder: Path) -> list[Migration]:
    if not folder.is_dir():
        raise MigrationError(f"migrations folder {folder} does not exist")
    return [Migration.read(p) for p in sorted(folder.glob("*.sql"))]


def pending(migrations: list[Migration], applied: dict[str, str]) -> list[Migration]:
    """The migrations still to apply; raises when an applied one was edited since. Pure."""
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.version} was changed after it was applied",
                hint="add a new migration instead, or wipe the database with `devenv down --volumes`")
    return [m for m in migrations if m.version not in applied]


def apply(conn, folder: Path) -> list[str]:
    """Applies what is pending on ``conn`` (a psycopg connection); returns the versions applied."""
    import psycopg

    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (version text PRIMARY KEY, checksum text NOT NULL, "
                 "applied_at timestamptz NOT NULL DEFAULT now())")
    conn.commit()
    applied = dict(conn.execute(f"SELECT version, checksum FROM {TABLE}").fetchall())
    done = []
    for migration in pending(discover(folder), applied):
        try:
            with conn.transaction():
                conn.execute(migration.path.read_text())
                conn.execute(f"INSERT INTO {TABLE} (version, checksum) VALUES (%s, %s)",
                             (migration.version, migration.checksum))
        except psycopg.Error as exc:
            raise MigrationError(f"migration {migration.path} failed: {str(exc).strip()}",
                                 hint="fix the file and run `devenv seed` (nothing of it was applied)") from None
        done.append(migration.version)
    conn.commit()
    return done
