"""One psycopg_pool ConnectionPool per task, opened at startup without waiting for the
database (liveness must not depend on it; readiness does)."""

from __future__ import annotations

import logging
import threading

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from .config import Settings

log = logging.getLogger("nedlia.db")


def make_pool(settings: Settings, name: str) -> ConnectionPool:
    pool: ConnectionPool | None = None

    def check(conn) -> None:
        """A connection is checked before it is lent. One found broken means Postgres restarted
        and every idle one is broken too: they are all checked (and replaced) at once, in the
        background, instead of one per borrow with the pool's growing backoff sleeps between
        them (1 s, 2 s, 4 s: longer than a borrower waits)."""
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            if pool is not None:
                threading.Thread(target=pool.check, daemon=True, name="pool-check").start()
            raise

    pool = ConnectionPool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        kwargs={"row_factory": dict_row, "application_name": name, "connect_timeout": 5},
        name=name,
        timeout=5.0,  # waiting for a free connection
        max_idle=300.0,
        reconnect_timeout=0,  # keep trying to reconnect for as long as the task lives
        open=False,
        check=check,  # a connection killed by a Postgres restart is replaced
    )
    return pool


def ready(pool: ConnectionPool, timeout: float = 2.0) -> str | None:
    """None when Postgres answers ``SELECT 1`` through the pool, else why not."""
    try:
        with pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        return f"{type(exc).__name__}: {exc}".strip()
