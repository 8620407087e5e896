"""Gathering messages into batches (pure): size, batching window, payload limit; concurrency limits."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Sequence


if TYPE_CHECKING:
    from devenv.config.model import SqsEventSourceConfig

log = logging.getLogger(__name__)


# Limits of SQS and of Lambda's pollers, shared by the batching rules and the pollers.
SQS_MAX_MESSAGES = 10  # per ReceiveMessage
SQS_MAX_WAIT = 20  # seconds of long polling per ReceiveMessage
SQS_MAX_ENTRIES = 10  # per DeleteMessageBatch / ChangeMessageVisibilityBatch
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024  # Lambda's limit for a RequestResponse payload
INITIAL_POLLERS = 5  # AWS starts an SQS mapping with five concurrent batches
LOCAL_MAX_POLLERS = 10  # with neither limit set: the Lambda runtime's local unreserved pool
SCALE_UP_INTERVAL = 0.2  # seconds between added pollers: AWS adds up to 300 a minute
TAIL_POLL_INTERVAL = 0.05  # short-poll pause in the last, sub-second part of a batching window
CLIENT_CONNECTIONS = 10  # botocore pools 10 connections per client: one client per 10 pollers


# ---------------------------------------------------------------- batching (pure)


class BatchGatherer:
    """One batch being gathered, receive by receive. Pure: the caller passes the time.

    ``next_receive`` says how many messages to ask for and how long to wait; ``add`` takes
    what came (returning what does not fit under the payload limit); ``complete`` says when
    to invoke. The window opens with the batch's first message.
    """

    _EMPTY_EVENT = len('{"Records": []}')

    def __init__(self, batch_size: int, window: float, *, poll_wait: int = SQS_MAX_WAIT,
                 max_bytes: int = MAX_SYNC_PAYLOAD):
        self.batch_size = batch_size
        self.window = window
        self.poll_wait = poll_wait
        self.max_bytes = max_bytes
        self.records: list[dict[str, Any]] = []
        self.opened_at: float | None = None
        self.size = self._EMPTY_EVENT  # of the event, in bytes
        self.full = False

    def add(self, records: Sequence[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """Take ``records`` in order; the ones past the batch size or the payload limit are
        returned, for the next batch.

        A message received again while its batch gathers (its visibility timeout is shorter
        than the window) replaces its earlier record: one record per message, with the
        receipt handle that still works.
        """
        for index, record in enumerate(records):
            if self._replace(record):
                continue
            size = len(json.dumps(record)) + (2 if self.records else 0)  # ", " between records
            if len(self.records) >= self.batch_size or (
                    self.records and self.size + size > self.max_bytes):
                self.full = True
                return list(records[index:])
            self.records.append(record)
            self.size += size
            if self.opened_at is None:
                self.opened_at = now
        if len(self.records) >= self.batch_size:
            self.full = True
        return []

    def _replace(self, record: dict[str, Any]) -> bool:
        for index, held in enumerate(self.records):
            if held["messageId"] == record["messageId"]:
                self.size += len(json.dumps(record)) - len(json.dumps(held))
                self.records[index] = record
                return True
        return False

    def complete(self, now: float) -> bool:
        if not self.records:
            return False
        if self.full or self.window <= 0:
            return True
        return now - self.opened_at >= self.window  # type: ignore[operator]

    def remaining(self, now: float) -> float:
        """Seconds left in the window (the whole long poll while the batch is empty)."""
        if self.opened_at is None:
            return float(self.poll_wait)
        return max(0.0, self.window - (now - self.opened_at))

    def next_receive(self, now: float) -> tuple[int, float]:
        """(MaxNumberOfMessages, seconds to wait at most) for the next receive."""
        count = min(SQS_MAX_MESSAGES, self.batch_size - len(self.records))
        return count, min(float(self.poll_wait), self.remaining(now))

    def event(self) -> bytes:
        return json.dumps({"Records": self.records}).encode()


def concurrency_limit(config: SqsEventSourceConfig, reserved_concurrency: int | None) -> int:
    """How many batches a mapping may have in flight (see the module docstring)."""
    caps = [c for c in (config.maximum_concurrency, reserved_concurrency) if c is not None]
    return max(1, min(caps)) if caps else LOCAL_MAX_POLLERS


