"""Video metadata in Redis: ``video:<id>`` holds JSON for 300 s. Only videos whose metadata
is ready are cached, so a video fixed later is read again from Postgres at once."""

from __future__ import annotations

import json
import logging
from typing import Callable

from nedlia_common.numbers import to_decimal, to_json

from .rules import Video

log = logging.getLogger("nedlia.validation.cache")

TTL_SECONDS = 300
HIT = "stats:video_cache:hit"
MISS = "stats:video_cache:miss"


def key(video_id: str) -> str:
    return f"video:{video_id}"


def encode(video: Video, title: str | None = None) -> str:
    return json.dumps({"id": video.id, "title": title, "duration_seconds": to_json(video.duration_seconds)})


def decode(raw: bytes | str) -> Video | None:
    """The cached video, or None when the entry is unusable (then it counts as a miss)."""
    try:
        data = json.loads(raw)
        duration = data["duration_seconds"]
        return Video(id=str(data["id"]), duration_seconds=None if duration is None else to_decimal(duration))
    except (ValueError, KeyError, TypeError):
        return None


class VideoMetadata:
    """Cache-aside read of one video's metadata: (video or None, "cache" | "database").

    Redis trouble never fails a validation: it is logged and Postgres answers."""

    def __init__(self, redis, load: Callable[[str], tuple[Video, str | None] | None], ttl: int = TTL_SECONDS):
        self.redis = redis
        self.load = load  # video id -> (Video, title) from Postgres, or None
        self.ttl = ttl

    def _redis(self, what: str, call: Callable):
        if self.redis is None:
            return None
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - any Redis failure degrades to Postgres
            log.warning("redis %s failed: %s", what, exc)
            return None

    def get(self, video_id: str) -> tuple[Video | None, str]:
        raw = self._redis("GET", lambda: self.redis.get(key(video_id)))
        cached = decode(raw) if raw is not None else None
        if cached is not None and cached.duration_seconds is not None:
            self._redis("INCR", lambda: self.redis.incr(HIT))
            return cached, "cache"
        self._redis("INCR", lambda: self.redis.incr(MISS))
        found = self.load(video_id)
        if found is None:
            return None, "database"
        video, title = found
        if video.duration_seconds is not None:
            self._redis("SET", lambda: self.redis.set(key(video_id), encode(video, title), ex=self.ttl))
        return video, "database"
