"""notification-worker: SQS (nedlia-notification, fed by the placement-decided rule) ->
POST /notification/notifications.

Each record's body is a ``placement.validated`` or ``placement.rejected`` event; it becomes
a notification ``{placement_id, kind: <detail-type>, message, event_id}``. ``event_id`` is the
event's own key (``detail.event_id``, set by the producer's outbox; else EventBridge's event
id): notification-service stores one notification per event id, so a redelivered or
re-relayed event answers 200 with the notification it already made. Failures are reported
per record in ``batchItemFailures``.
"""

from __future__ import annotations

from typing import Any

from nedlia_lambda.alb import AlbClient, lambda_trace, trace_root
from nedlia_lambda.batch import RecordFailed, event_of, log, process_batch, record_trace, remaining
from nedlia_lambda.budget import Budget

CALL_TIMEOUT = 5.0

_client: AlbClient | None = None


def notification_for(event: dict) -> dict:
    """The notification an event becomes."""
    detail = event["detail"]
    kind = event.get("detail-type")
    placement_id = detail.get("placement_id")
    if not placement_id or not kind:
        raise RecordFailed("event without detail-type or detail.placement_id")
    video = detail.get("video_id")
    where = f" on video {video}" if video else ""
    if kind == "placement.validated":
        message = f"Placement {placement_id}{where} was validated."
    elif kind == "placement.rejected":
        message = f"Placement {placement_id}{where} was rejected: {detail.get('reason') or 'no reason given'}."
    else:
        message = f"Placement {placement_id}{where}: {kind}."
    event_id = detail.get("event_id") or event.get("id")
    if not event_id:
        raise RecordFailed("event without detail.event_id or id")
    return {"placement_id": placement_id, "kind": kind, "message": message, "event_id": str(event_id)}


def handle_record(record: dict, seconds: float, client: Any, invocation_trace: str | None = None) -> dict:
    budget = Budget(seconds, CALL_TIMEOUT)
    body = notification_for(event_of(record))
    trace = record_trace(record, invocation_trace)
    reply = client.request("POST", "/notification/notifications", body, trace=trace, timeout=budget.timeout())
    if reply.status not in (200, 201):  # 200: this event's notification existed already
        raise RecordFailed(f"notification-service answered {reply.status}: {reply.text[:300]}")
    created = reply.json() or {}
    log("info", "notification recorded" if reply.status == 201 else "notification already recorded",
        notification_id=created.get("id"), placement_id=body["placement_id"], kind=body["kind"],
        event_id=body["event_id"], trace=trace_root(trace))
    return created


def handler(event: dict, context: Any) -> dict:
    global _client
    if _client is None:
        _client = AlbClient()
    client = _client
    trace = lambda_trace()
    return process_batch(event.get("Records") or [],
                         lambda record, seconds: handle_record(record, seconds, client, trace),
                         remaining(context))
