"""``EventPublisher``: events devenv raises itself (ECS's task, service and deployment
events) put on an EventBridge bus in the emulator from a background thread, in order, ten
entries per PutEvents, kept (bounded) while the emulator is unreachable. Entries the bus
refuses (an emulator may refuse a source, as ministack refuses ``aws.*`` ones) are said in the
log once per source and error code, not retried."""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Callable

from devenv.aws.sender import BackgroundSender

MAX_PER_CALL = 10  # PutEvents' limit
KEPT = 5000  # entries kept through an outage; the oldest go first

log = logging.getLogger("devenv.events")


def refusals(batch: list[dict], answer: dict | None) -> list[tuple[str, str, str]]:
    """(source, error code, message) of each entry of ``batch`` that PutEvents' ``answer``
    says failed (its Entries are in the order of the request's)."""
    results = (answer or {}).get("Entries") or []
    return [(entry.get("Source", ""), result["ErrorCode"], result.get("ErrorMessage", ""))
            for entry, result in zip(batch, results) if result.get("ErrorCode")]


class EventPublisher(BackgroundSender):
    what = "EventBridge in the emulator"

    def __init__(self, client_factory: Callable[[], Any], *, interval: float = 0.2):
        super().__init__(interval, "devenv-eventbridge")
        self._factory = client_factory
        self._client: Any = None
        self._lock = threading.Lock()
        self._pending: collections.deque[dict] = collections.deque(maxlen=KEPT)
        self._refused: set[tuple[str, str]] = set()  # (source, error code) already said

    def put(self, entry: dict) -> None:
        """One PutEvents entry (Source, DetailType, Detail as JSON text, Resources, EventBusName)."""
        with self._lock:
            self._pending.append(entry)

    def _cycle(self, final: bool) -> bool:
        while True:
            with self._lock:
                batch = [self._pending[i] for i in range(min(MAX_PER_CALL, len(self._pending)))]
            if not batch:
                self._recovered()
                return True
            try:
                if self._client is None:
                    self._client = self._factory()
                answer = self._client.put_events(Entries=batch)
            except Exception as exc:
                self._note_outage(exc)
                return False
            for source, code, message in refusals(batch, answer):
                if (source, code) not in self._refused:
                    self._refused.add((source, code))
                    log.warning("%s refused the events of source %s (%s: %s); they reach no rule "
                                "(docs/emulators.md)", self.what, source, code, message)
            with self._lock:
                for _ in batch:
                    self._pending.popleft()


def events_client_factory(url: str, region: str) -> Callable[[], Any]:
    """A boto3 ``events`` client for the emulator at ``url``, one attempt per call."""
    from .endpoint import AwsEndpoint, ClientSettings, make_client

    return lambda: make_client("events", AwsEndpoint(url, region), ClientSettings(max_attempts=1))
