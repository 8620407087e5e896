"""validation-service (FastAPI on port 8000, behind the internal ALB at /validation/*).

POST /validation/validate decides a placement against its video (metadata from Redis, else
Postgres) and the validated placements already on that video. The decision is recorded once
per placement: in one transaction the placement moves from ``pending`` to ``validated`` or
``rejected`` (a conditional UPDATE) and ``placement.validated`` / ``placement.rejected`` is
written to the outbox, relayed after the commit (nedlia_common/outbox.py). A redelivered
request finds the placement decided and answers that decision again without a new event, so
the worker may retry freely. Decisions on one video are taken one at a time (a transaction
lock per video), so two overlapping placements are never both validated. Metadata not
processed yet is a 409: the caller retries later and nothing is recorded.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse

from nedlia_common import trace as tracing
from nedlia_common.config import Settings
from nedlia_common.numbers import to_decimal
from nedlia_common.outbox import Outbox, Relay
from nedlia_common.web import ApiError, create_app, trace_of

from . import rules
from .cache import VideoMetadata

log = logging.getLogger("nedlia.validation")

SOURCE = "nedlia.validation-service"


def setup(app: FastAPI, settings: Settings) -> None:
    app.state.outbox = Outbox(SOURCE)
    app.state.relay = Relay.for_service(app.state.pool, settings, SOURCE).start()
    app.state.redis = None
    if settings.redis_url:
        import redis

        app.state.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)

    def load(video_id: str):
        with app.state.pool.connection() as conn:
            row = conn.execute("SELECT id, title, duration_seconds FROM videos WHERE id = %s", (video_id,)).fetchone()
        if row is None:
            return None
        return rules.Video(row["id"], row["duration_seconds"]), row["title"]

    app.state.metadata = VideoMetadata(app.state.redis, load)


def teardown(app: FastAPI) -> None:
    app.state.relay.stop()
    if app.state.redis is not None:
        app.state.redis.close()


app = create_app("validation-service", "/validation", setup=setup, teardown=teardown, traced_with_xray=True)


def parse(body: Any) -> tuple[str, str, Any, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    try:
        placement_id = str(uuid.UUID(str(body.get("placement_id"))))
    except ValueError:
        raise ApiError(400, "placement_id must be a UUID") from None
    video_id = body.get("video_id")
    if not isinstance(video_id, str) or not video_id:
        raise ApiError(400, "video_id is required (a string)")
    numbers = []
    for name in ("start_seconds", "end_seconds"):
        value = body.get(name)
        if value is None or isinstance(value, (bool, str)):
            raise ApiError(400, f"{name} is required (a number of seconds)")
        try:
            numbers.append(to_decimal(value))
        except ValueError as exc:
            raise ApiError(400, f"{name}: {exc}") from None
    return placement_id, video_id, numbers[0], numbers[1]


@app.post("/validation/validate")
def validate(request: Request, body: Annotated[Any, Body()]):
    placement_id, video_id, start, end = parse(body)
    trace = trace_of(request)
    video, source = request.app.state.metadata.get(video_id)  # before the transaction: it may use the pool
    with request.app.state.pool.connection() as conn, conn.transaction():
        # One decision at a time per video: the overlap check below then sees every placement
        # validated before it, and the placement's own row is locked until the commit.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (video_id,))
        current = conn.execute("SELECT status, reason FROM placements WHERE id = %s FOR UPDATE",
                               (placement_id,)).fetchone()
        if current is None:
            raise ApiError(404, f"placement {placement_id} not found")
        if current["status"] != "pending":
            log.info("placement %s already %s; no new event trace=%s", placement_id, current["status"],
                     tracing.root(trace))
            return {"placement_id": placement_id, "decision": current["status"], "reason": current["reason"],
                    "metadata_source": source, "replayed": True}
        booked: list[rules.Booked] = []
        if video is not None and video.duration_seconds is not None:
            rows = conn.execute("SELECT id, start_seconds, end_seconds FROM placements "
                                "WHERE video_id = %s AND status = 'validated' AND id <> %s",
                                (video_id, placement_id)).fetchall()
            booked = [rules.Booked(str(r["id"]), r["start_seconds"], r["end_seconds"]) for r in rows]
        try:
            decision = rules.decide(video_id, video, start, end, booked)
        except rules.MetadataNotReady as exc:
            log.info("placement %s waits: %s trace=%s", placement_id, exc, tracing.root(trace))
            return JSONResponse({"error": str(exc)}, status_code=409)
        changed = conn.execute("UPDATE placements SET status = %s, reason = %s, updated_at = now() "
                               "WHERE id = %s AND status = 'pending' RETURNING id",
                               (decision.decision, decision.reason, placement_id)).fetchone()
        if changed is not None:  # always, under the row lock; the condition states the rule
            request.app.state.outbox.record(conn, f"placement.{decision.decision}", {
                "placement_id": placement_id, "video_id": video_id, "decision": decision.decision,
                "reason": decision.reason}, trace)
    request.app.state.relay.wake()
    log.info("placement %s %s (%s) metadata=%s trace=%s", placement_id, decision.decision, decision.reason, source,
             tracing.root(trace))
    return {"placement_id": placement_id, "decision": decision.decision, "reason": decision.reason,
            "metadata_source": source, "replayed": False}
