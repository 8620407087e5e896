"""The transactional outbox: an event is recorded in the same database transaction as the
state change it announces, and relayed to EventBridge after the commit.

So a committed change always gets its event (even if the bus is down, or the task dies right
after the commit), and no event announces a change that was rolled back. ``Outbox.record``
inserts the row inside the caller's transaction; a ``Relay`` thread per task publishes the
service's unsent rows, oldest first, retries until the bus accepts them and marks them sent.
It is woken after each commit (an event leaves within milliseconds) and also polls every
``interval`` seconds for rows a killed task or a refused PutEvents left behind. Rows are
claimed with ``FOR UPDATE SKIP LOCKED``, so the relays of several tasks never send the same
row at once. Delivery is still at least once (a relay killed between PutEvents and its
commit sends the row again): every event carries ``detail.event_id`` (the row's id), the key
consumers de-duplicate on.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from .config import Settings
from .events import PublishError, Publisher, relay_client

log = logging.getLogger("nedlia.outbox")

PRUNE_AFTER = "7 days"  # sent rows are kept this long (to look at), then deleted
PRUNE_EVERY = 3600.0


class Outbox:
    """Records events of one source (a service) in the ``outbox`` table."""

    def __init__(self, source: str):
        self.source = source

    def record(self, conn, detail_type: str, detail: dict[str, Any], trace: str | None = None) -> str:
        """Inserts the event in ``conn``'s current transaction; returns its id, which is also
        ``detail.event_id``. Nothing is sent before that transaction commits."""
        event_id = str(uuid.uuid4())
        conn.execute("INSERT INTO outbox (id, source, detail_type, detail, trace) VALUES (%s, %s, %s, %s, %s)",
                     (event_id, self.source, detail_type, Jsonb({**detail, "event_id": event_id}), trace))
        return event_id


class Relay:
    """Publishes one source's unsent outbox rows (see the module's docstring). ``start`` runs
    it in a daemon thread; ``wake`` after a commit; ``stop`` at shutdown."""

    def __init__(self, pool, publisher: Publisher, *, interval: float = 1.0, batch: int = 20):
        self.pool = pool
        self.publisher = publisher
        self.source = publisher.source
        self.interval = interval
        self.batch = batch
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="outbox-relay")
        self._failing = False
        self._pruned = 0.0

    @classmethod
    def for_service(cls, pool, settings: Settings, source: str) -> "Relay":
        """The relay of a service's events on its configured bus."""
        return cls(pool, Publisher(relay_client(settings), bus=settings.event_bus, source=source))

    def start(self) -> "Relay":
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                while self.relay_once() == self.batch and not self._stopped.is_set():
                    pass  # a full batch: more may be waiting
                self._prune()
            except Exception as exc:  # noqa: BLE001 - the database is down or restarting: next round
                self._report_failure(f"{type(exc).__name__}: {exc}")

    def relay_once(self) -> int:
        """Publishes up to ``batch`` unsent rows in one transaction; returns how many were
        sent. Stops at the first refusal (the bus is down: the rest would fail too)."""
        sent = 0
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT id, detail_type, detail, trace FROM outbox WHERE source = %s AND sent_at IS NULL "
                "ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED", (self.source, self.batch)).fetchall()
            for row in rows:
                try:
                    self.publisher.publish(row["detail_type"], row["detail"], row["trace"])
                except PublishError as exc:
                    conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                                 (str(exc)[:1000], row["id"]))
                    self._report_failure(f"event {row['id']} ({row['detail_type']}): {exc}")
                    break
                conn.execute("UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL "
                             "WHERE id = %s", (row["id"],))
                sent += 1
        if sent and self._failing:
            self._failing = False
            log.info("outbox relay of %s delivering again", self.source)
        return sent

    def _report_failure(self, what: str) -> None:
        if not self._failing:  # once per outage, not once a second
            log.warning("outbox relay of %s: %s; retrying every %.0f s", self.source, what, self.interval)
        self._failing = True

    def _prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned < PRUNE_EVERY:
            return
        self._pruned = now
        with self.pool.connection() as conn:
            conn.execute(f"DELETE FROM outbox WHERE source = %s AND sent_at < now() - interval '{PRUNE_AFTER}'",
                         (self.source,))
