"""validation-worker: SQS (nedlia-validation, fed by the placement-created rule) ->
validation-service -> placement-service.

Each record's body is a ``placement.created`` EventBridge event. The placement is validated
through POST /validation/validate, which records the decision on the placement and its event
in one transaction, once: a redelivered record gets the same decision back and changes
nothing, so retrying is always safe. Any failure (a non-2xx answer such as the 409 for
metadata not ready, or a 404 for a placement not found, a timeout, a malformed record)
reports that record in ``batchItemFailures``: it is retried, never dropped, after the
visibility timeout, and reaches the DLQ after maxReceiveCount receives. (The event is
relayed only after the placement's commit, so a 404 means a placement that does not exist.)
"""

from __future__ import annotations

from typing import Any

from nedlia_lambda.alb import AlbClient, lambda_trace, trace_root
from nedlia_lambda.batch import RecordFailed, event_of, log, process_batch, record_trace, remaining
from nedlia_lambda.budget import Budget

CALL_TIMEOUT = 5.0
DECISIONS = ("validated", "rejected")
FIELDS = ("placement_id", "video_id", "start_seconds", "end_seconds")

_client: AlbClient | None = None  # reused by warm invocations


def validation_request(event: dict) -> dict:
    """The POST /validation/validate body for a placement.created event."""
    detail = event["detail"]
    missing = [name for name in FIELDS if detail.get(name) is None]
    if missing:
        raise RecordFailed(f"placement.created event without {', '.join(missing)}")
    return {name: detail[name] for name in FIELDS}


def handle_record(record: dict, seconds: float, client: Any, invocation_trace: str | None = None) -> dict:
    """Has one placement validated (validation-service records the decision); raises
    RecordFailed (or alb.Unreachable) when the record must be retried. Returns the decision."""
    budget = Budget(seconds, CALL_TIMEOUT)
    body = validation_request(event_of(record))
    trace = record_trace(record, invocation_trace)
    reply = client.request("POST", "/validation/validate", body, trace=trace, timeout=budget.timeout())
    if reply.status != 200:
        raise RecordFailed(f"validation-service answered {reply.status}: {reply.text[:300]}")
    result = reply.json() or {}
    decision = result.get("decision")
    if decision not in DECISIONS:
        raise RecordFailed(f"validation-service gave no decision: {reply.text[:300]}")
    log("info", "placement decided", placement_id=body["placement_id"], decision=decision,
        reason=result.get("reason"), metadata_source=result.get("metadata_source"),
        replayed=bool(result.get("replayed")), trace=trace_root(trace))
    return result


def handler(event: dict, context: Any) -> dict:
    global _client
    if _client is None:
        _client = AlbClient()
    client = _client
    trace = lambda_trace()
    return process_batch(event.get("Records") or [],
                         lambda record, seconds: handle_record(record, seconds, client, trace),
                         remaining(context))
