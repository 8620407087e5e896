"""SQS batches with ReportBatchItemFailures: each record on its own, failures reported by
messageId, never the whole batch for one record."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable

# A record is not started with less time than this left; it is reported as failed instead
# (retried later) rather than cut off by the function timeout, which would fail the batch.
MARGIN_SECONDS = 0.5


def log(level: str, message: str, **fields: Any) -> None:
    print(json.dumps({"level": level, "message": message, **fields}, default=str), flush=True)


def batch_response(failed_message_ids: Iterable[str]) -> dict:
    """The partial batch response Lambda expects: only these messages return to the queue."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed_message_ids]}


def process_batch(records: list[dict], handle: Callable[[dict, float], None],
                  time_left: Callable[[], float] = lambda: 60.0) -> dict:
    """Runs ``handle(record, seconds_left)`` for each record; a record whose handler raises,
    or that is not started because time ran short, is reported as failed."""
    failed: list[str] = []
    for record in records:
        message_id = record.get("messageId", "")
        left = time_left()
        if left < MARGIN_SECONDS:
            log("warn", "not enough time left for this record; it will be retried", messageId=message_id,
                seconds_left=round(left, 3))
            failed.append(message_id)
            continue
        try:
            handle(record, left - MARGIN_SECONDS)
        except Exception as exc:  # noqa: BLE001 - one record's failure is reported, not raised
            log("error", "record failed; it will be retried", messageId=message_id, error=f"{type(exc).__name__}: {exc}",
                receive_count=record.get("attributes", {}).get("ApproximateReceiveCount"))
            failed.append(message_id)
    return batch_response(failed)


def remaining(context: Any) -> Callable[[], float]:
    """Seconds left in the invocation, from the Lambda context (or a generous default)."""
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        return lambda: context.get_remaining_time_in_millis() / 1000.0
    deadline = time.monotonic() + 60.0
    return lambda: deadline - time.monotonic()


class RecordFailed(Exception):
    """A record that could not be processed now (a non-2xx answer, a timeout)."""


def event_of(record: dict) -> dict:
    """The EventBridge event an SQS record carries."""
    try:
        event = json.loads(record["body"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordFailed(f"the body is not an EventBridge event: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        raise RecordFailed("the body is not an EventBridge event (no detail object)")
    return event


def record_trace(record: dict, invocation: str | None) -> str | None:
    """The trace to pass on for one record: the invocation's (``_X_AMZN_TRACE_ID``, whose
    parent is this invocation) when the record belongs to the same trace, else the record's
    own AWSTraceHeader (a batch mate from another trace), else the invocation's."""
    own = (record.get("attributes") or {}).get("AWSTraceHeader")
    if own and invocation and _root(own) != _root(invocation):
        return own
    return invocation or own


def _root(trace: str) -> str | None:
    for field in trace.split(";"):
        name, _, value = field.strip().partition("=")
        if name == "Root":
            return value
    return None
