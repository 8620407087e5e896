"""placement-service (FastAPI on port 8000, behind the internal ALB at /placement/*).

Owns videos and placements in Postgres. A new placement and its ``placement.created`` event
are written in one database transaction (the transactional outbox, nedlia_common/outbox.py):
the client gets 201 once both are committed, and the task's relay publishes the event after
the commit, retrying until the bus accepts it. So every stored placement gets its event, even
when the bus is down, and no event announces a placement that was not stored.
``Idempotency-Key`` makes retries of POST /placement/placements safe.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Request, Response

from nedlia_common import trace as tracing
from nedlia_common.config import Settings
from nedlia_common.numbers import to_json
from nedlia_common.outbox import Outbox, Relay
from nedlia_common.web import ApiError, create_app, trace_of

from . import domain

log = logging.getLogger("nedlia.placement")

SOURCE = "nedlia.placement-service"
PLACEMENT_COLUMNS = "id, video_id, advertiser_id, product, start_seconds, end_seconds, status, reason, created_at"
VIDEO_COLUMNS = "id, title, duration_seconds, s3_key, created_at"
JsonBody = Annotated[Any, Body()]


def setup(app: FastAPI, settings: Settings) -> None:
    app.state.outbox = Outbox(SOURCE)
    app.state.relay = Relay.for_service(app.state.pool, settings, SOURCE).start()
    app.state.redis = None
    if settings.redis_url:
        import redis

        app.state.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)


def teardown(app: FastAPI) -> None:
    app.state.relay.stop()
    if app.state.redis is not None:
        app.state.redis.close()


app = create_app("placement-service", "/placement", setup=setup, teardown=teardown)


def placement_json(row: dict) -> dict:
    return {"id": str(row["id"]), "video_id": row["video_id"], "advertiser_id": row["advertiser_id"],
            "product": row["product"], "start_seconds": to_json(row["start_seconds"]),
            "end_seconds": to_json(row["end_seconds"]), "status": row["status"], "reason": row["reason"],
            "created_at": row["created_at"].isoformat()}


def video_json(row: dict) -> dict:
    return {"id": row["id"], "title": row["title"], "duration_seconds": to_json(row["duration_seconds"]),
            "s3_key": row["s3_key"], "created_at": row["created_at"].isoformat()}


def invalid(exc: domain.InvalidRequest) -> ApiError:
    return ApiError(400, str(exc))


def placement_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(404, f"placement {value} not found") from None


# ------------------------------------------------------------------ videos


@app.post("/placement/videos", status_code=201)
def register_video(request: Request, body: JsonBody):
    try:
        if not isinstance(body, dict):
            raise domain.InvalidRequest("the body must be a JSON object")
        video_id = domain.video_id(body.get("id"))
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise domain.InvalidRequest("title is required (a non-empty string)")
        duration = domain.duration(body.get("duration_seconds"))
        s3_key = body.get("s3_key")
        if s3_key is not None and not isinstance(s3_key, str):
            raise domain.InvalidRequest("s3_key must be a string or null")
    except domain.InvalidRequest as exc:
        raise invalid(exc)
    with request.app.state.pool.connection() as conn:
        row = conn.execute(
            f"INSERT INTO videos (id, title, duration_seconds, s3_key) VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT (id) DO NOTHING RETURNING {VIDEO_COLUMNS}",
            (video_id, title.strip(), duration, s3_key)).fetchone()
    if row is None:
        raise ApiError(409, f"video {video_id} already exists")
    log.info("video registered id=%s duration=%s trace=%s", video_id, duration, tracing.root(trace_of(request)))
    return video_json(row)


@app.patch("/placement/videos/{video_id}")
def update_video(video_id: str, request: Request, body: JsonBody):
    try:
        if not isinstance(body, dict) or "duration_seconds" not in body:
            raise domain.InvalidRequest("the body must be a JSON object with duration_seconds")
        duration = domain.duration(body["duration_seconds"])
    except domain.InvalidRequest as exc:
        raise invalid(exc)
    with request.app.state.pool.connection() as conn:
        row = conn.execute(f"UPDATE videos SET duration_seconds = %s WHERE id = %s RETURNING {VIDEO_COLUMNS}",
                           (duration, video_id)).fetchone()
    if row is None:
        raise ApiError(404, f"video {video_id} not found")
    forget_cached_video(request.app, video_id)
    log.info("video updated id=%s duration=%s trace=%s", video_id, duration, tracing.root(trace_of(request)))
    return video_json(row)


def forget_cached_video(app: FastAPI, video_id: str) -> None:
    """validation-service caches video metadata for 300 s; a changed video must not wait that out."""
    if app.state.redis is None:
        return
    try:
        app.state.redis.delete(f"video:{video_id}")
    except Exception as exc:  # noqa: BLE001 - the write succeeded; a stale cache entry expires
        log.warning("could not drop cached metadata of video %s: %s", video_id, exc)


@app.get("/placement/videos/{video_id}")
def get_video(video_id: str, request: Request):
    with request.app.state.pool.connection() as conn:
        row = conn.execute(f"SELECT {VIDEO_COLUMNS} FROM videos WHERE id = %s", (video_id,)).fetchone()
    if row is None:
        raise ApiError(404, f"video {video_id} not found")
    return video_json(row)


@app.get("/placement/videos/{video_id}/placements")
def video_placements(video_id: str, request: Request):
    with request.app.state.pool.connection() as conn:
        rows = conn.execute(f"SELECT {PLACEMENT_COLUMNS} FROM placements WHERE video_id = %s "
                            f"ORDER BY start_seconds, created_at", (video_id,)).fetchall()
    return [placement_json(row) for row in rows]


# ------------------------------------------------------------------ placements


@app.post("/placement/placements", status_code=201)
def create_placement(request: Request, response: Response, body: JsonBody,
                     idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None):
    try:
        new = domain.new_placement(body)
    except domain.InvalidRequest as exc:
        raise invalid(exc)
    key = idempotency_key.strip() if idempotency_key and idempotency_key.strip() else None
    trace = trace_of(request)
    values = (new.video_id, new.advertiser_id, new.product, new.start_seconds, new.end_seconds, key)
    with request.app.state.pool.connection() as conn, conn.transaction():
        # A concurrent request with the same key waits here on the unique index until the
        # first one commits (then it replays) or rolls back (then it inserts).
        row = conn.execute(
            f"INSERT INTO placements (id, video_id, advertiser_id, product, start_seconds, end_seconds, "
            f"idempotency_key) VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT (idempotency_key) DO NOTHING RETURNING {PLACEMENT_COLUMNS}", values).fetchone()
        if row is None:
            existing = conn.execute(f"SELECT {PLACEMENT_COLUMNS} FROM placements WHERE idempotency_key = %s",
                                    (key,)).fetchone()
            if existing is None or not new.matches(existing):
                raise ApiError(422, f"Idempotency-Key {key} was already used for a different request")
            response.status_code = 200
            log.info("placement replayed id=%s key=%s trace=%s", existing["id"], key, tracing.root(trace))
            return placement_json(existing)
        # Recorded with the placement; relayed once the transaction has committed.
        request.app.state.outbox.record(conn, "placement.created", {
            "placement_id": str(row["id"]), "video_id": row["video_id"], "advertiser_id": row["advertiser_id"],
            "start_seconds": to_json(row["start_seconds"]), "end_seconds": to_json(row["end_seconds"]),
        }, trace)
    request.app.state.relay.wake()
    log.info("placement created id=%s video=%s %s-%s s trace=%s", row["id"], row["video_id"],
             row["start_seconds"], row["end_seconds"], tracing.root(trace))
    return placement_json(row)


@app.get("/placement/placements/{placement_id}")
def get_placement(placement_id: str, request: Request):
    pid = placement_uuid(placement_id)
    with request.app.state.pool.connection() as conn:
        row = conn.execute(f"SELECT {PLACEMENT_COLUMNS} FROM placements WHERE id = %s", (pid,)).fetchone()
    if row is None:
        raise ApiError(404, f"placement {placement_id} not found")
    return placement_json(row)


@app.patch("/placement/placements/{placement_id}")
def set_status(placement_id: str, request: Request, body: JsonBody):
    pid = placement_uuid(placement_id)
    try:
        status, reason = domain.status_change(body)
    except domain.InvalidRequest as exc:
        raise invalid(exc)
    with request.app.state.pool.connection() as conn:
        row = conn.execute(f"UPDATE placements SET status = %s, reason = %s, updated_at = now() WHERE id = %s "
                           f"RETURNING {PLACEMENT_COLUMNS}", (status, reason, pid)).fetchone()
    if row is None:
        raise ApiError(404, f"placement {placement_id} not found")
    log.info("placement %s id=%s reason=%s trace=%s", status, placement_id, reason, tracing.root(trace_of(request)))
    return placement_json(row)


@app.get("/placement/placements/{placement_id}/score")
def score(placement_id: str, request: Request):
    pid = placement_uuid(placement_id)
    with request.app.state.pool.connection() as conn:
        row = conn.execute("SELECT id FROM placements WHERE id = %s", (pid,)).fetchone()
    if row is None:
        raise ApiError(404, f"placement {placement_id} not found")
    return {"placement_id": placement_id, "visibility_score": domain.visibility_score(str(pid))}
