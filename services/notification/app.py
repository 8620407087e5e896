"""notification-service (FastAPI on port 8000, behind the internal ALB at /notification/*).

POST /notification/notifications writes the outbox row and its JSON copy in S3
(``notifications/<id>.json`` in the notification bucket) in one database transaction: the row
is committed only once the object is stored, so every row's ``s3_key`` names an object.
It is an idempotent consumer: a notification carries the ``event_id`` of the event that
caused it (unique), and the same event again (a redelivery, a re-relayed outbox row) gets the
notification already made, with 200, instead of a second one.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import Body, FastAPI, Query, Request, Response

from nedlia_common import trace as tracing
from nedlia_common.config import Settings
from nedlia_common.events import aws_client
from nedlia_common.web import ApiError, create_app, trace_of

log = logging.getLogger("nedlia.notification")

COLUMNS = "id, placement_id, kind, message, s3_key, event_id, created_at"
MAX_KIND = 100
MAX_MESSAGE = 4000
MAX_EVENT_ID = 200


def setup(app: FastAPI, settings: Settings) -> None:
    app.state.s3 = aws_client("s3", settings, s3={"addressing_style": "path"})
    app.state.bucket = settings.notification_bucket


app = create_app("notification-service", "/notification", setup=setup)


def notification_json(row: dict) -> dict:
    return {"id": str(row["id"]), "placement_id": str(row["placement_id"]), "kind": row["kind"],
            "message": row["message"], "s3_key": row["s3_key"], "event_id": row["event_id"],
            "created_at": row["created_at"].isoformat()}


def parse(body: Any) -> tuple[uuid.UUID, str, str, str | None]:
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    try:
        placement_id = uuid.UUID(str(body.get("placement_id")))
    except ValueError:
        raise ApiError(400, "placement_id must be a UUID") from None
    kind, message = body.get("kind"), body.get("message")
    if not isinstance(kind, str) or not kind.strip() or len(kind) > MAX_KIND:
        raise ApiError(400, f"kind is required (a non-empty string of at most {MAX_KIND} characters)")
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
        raise ApiError(400, f"message is required (a non-empty string of at most {MAX_MESSAGE} characters)")
    event_id = body.get("event_id")
    if event_id is not None and (not isinstance(event_id, str) or not event_id.strip()
                                 or len(event_id) > MAX_EVENT_ID):
        raise ApiError(400, f"event_id must be a non-empty string of at most {MAX_EVENT_ID} characters")
    return placement_id, kind.strip(), message, event_id.strip() if event_id else None


@app.post("/notification/notifications", status_code=201)
def create_notification(request: Request, response: Response, body: Annotated[Any, Body()]):
    placement_id, kind, message, event_id = parse(body)
    notification_id = uuid.uuid4()
    s3_key = f"notifications/{notification_id}.json"
    trace = trace_of(request)
    with request.app.state.pool.connection() as conn, conn.transaction():
        # The same event delivered concurrently waits here on the unique index until the
        # first delivery commits (then it finds that notification) or rolls back.
        row = conn.execute(f"INSERT INTO notifications (id, placement_id, kind, message, s3_key, event_id) "
                           f"VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING {COLUMNS}",
                           (notification_id, placement_id, kind, message, s3_key, event_id)).fetchone()
        if row is None:
            existing = conn.execute(f"SELECT {COLUMNS} FROM notifications WHERE event_id = %s",
                                    (event_id,)).fetchone()
            if existing is None:  # deleted in between: let the caller retry
                raise ApiError(503, "could not store the notification; retry")
            response.status_code = 200
            log.info("notification for event %s exists already (%s); nothing new trace=%s", event_id,
                     existing["id"], tracing.root(trace))
            return notification_json(existing)
        document = notification_json(row)
        try:
            request.app.state.s3.put_object(
                Bucket=request.app.state.bucket, Key=s3_key, ContentType="application/json",
                Body=json.dumps({**document, "trace_id": tracing.root(trace),
                                 "stored_at": datetime.now(timezone.utc).isoformat()}).encode())
        except Exception as exc:  # noqa: BLE001 - the row is rolled back; the caller retries
            log.warning("could not store %s in s3://%s: %s", s3_key, request.app.state.bucket, exc)
            raise ApiError(503, "could not store the notification; retry") from None
    log.info("notification %s for placement %s kind=%s trace=%s", notification_id, placement_id, kind,
             tracing.root(trace))
    return document


@app.get("/notification/notifications")
def list_notifications(request: Request, placement_id: str | None = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100):
    with request.app.state.pool.connection() as conn:
        if placement_id is None:
            rows = conn.execute(f"SELECT {COLUMNS} FROM notifications ORDER BY created_at DESC LIMIT %s",
                                (limit,)).fetchall()
        else:
            try:
                pid = uuid.UUID(placement_id)
            except ValueError:
                raise ApiError(400, "placement_id must be a UUID") from None
            rows = conn.execute(f"SELECT {COLUMNS} FROM notifications WHERE placement_id = %s "
                                f"ORDER BY created_at LIMIT %s", (pid, limit)).fetchall()
    return [notification_json(row) for row in rows]
