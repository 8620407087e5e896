"""Pure placement rules: what a new placement must satisfy, when an Idempotency-Key replay
is the same request, and the CPU-heavy visibility score. No I/O here."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from nedlia_common.numbers import to_decimal

STATUSES = ("pending", "validated", "rejected")
VIDEO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_TEXT = 500


class InvalidRequest(ValueError):
    """The request breaks a rule; the message says which (HTTP 400)."""


@dataclass(frozen=True)
class NewPlacement:
    video_id: str
    advertiser_id: str
    product: str
    start_seconds: Decimal
    end_seconds: Decimal

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Whether a stored placement was created from this same request (idempotent replay)."""
        return (row["video_id"] == self.video_id and row["advertiser_id"] == self.advertiser_id
                and row["product"] == self.product
                and to_decimal(row["start_seconds"]) == self.start_seconds
                and to_decimal(row["end_seconds"]) == self.end_seconds)


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name} is required (a non-empty string)")
    if len(value) > MAX_TEXT:
        raise InvalidRequest(f"{name} is longer than {MAX_TEXT} characters")
    return value.strip()


def _seconds(body: Mapping[str, Any], name: str) -> Decimal:
    value = body.get(name)
    if value is None or isinstance(value, (bool, str)):
        raise InvalidRequest(f"{name} is required (a number of seconds)")
    try:
        return to_decimal(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}") from None


def new_placement(body: Any) -> NewPlacement:
    """Checks a POST /placement/placements body; raises InvalidRequest."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("the body must be a JSON object")
    start = _seconds(body, "start_seconds")
    end = _seconds(body, "end_seconds")
    if start < 0 or end < 0:
        raise InvalidRequest("start_seconds and end_seconds must not be negative")
    if end <= start:
        raise InvalidRequest(f"end_seconds ({end}) must be after start_seconds ({start})")
    return NewPlacement(video_id=_text(body, "video_id"), advertiser_id=_text(body, "advertiser_id"),
                        product=_text(body, "product"), start_seconds=start, end_seconds=end)


def video_id(value: Any) -> str:
    if not isinstance(value, str) or not VIDEO_ID.match(value):
        raise InvalidRequest("id must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


def duration(value: Any) -> Decimal | None:
    """A video's duration: a positive number of seconds, or null (metadata not processed yet)."""
    if value is None:
        return None
    if isinstance(value, (bool, str)):
        raise InvalidRequest("duration_seconds must be a number or null")
    try:
        number = to_decimal(value)
    except ValueError as exc:
        raise InvalidRequest(f"duration_seconds: {exc}") from None
    if number <= 0:
        raise InvalidRequest("duration_seconds must be positive")
    return number


def status_change(body: Any) -> tuple[str, str | None]:
    """A PATCH /placement/placements/{id} body: (status, reason)."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("the body must be a JSON object")
    status = body.get("status")
    if status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise InvalidRequest("reason must be a string or null")
    return status, reason


# The visibility score: deterministic, pure Python, ~20-30 ms of CPU on one core of the
# reference box. It models scoring SAMPLES frames of the placement's window on a GRID of
# screen cells; the numbers are made up, the CPU it burns is the point (autoscaling load).
SAMPLES = 800
GRID = 96


def visibility_score(placement_id: str, samples: int = SAMPLES, grid: int = GRID) -> float:
    """A score in [0, 100) for a placement, the same every time for the same id."""
    state = int.from_bytes(hashlib.sha256(placement_id.encode()).digest()[:8], "big") or 1
    mask = (1 << 64) - 1
    visible = 0.0
    for _ in range(samples):
        frame = 0
        for _ in range(grid):
            state ^= (state << 13) & mask  # xorshift64: the "saliency" of one cell
            state ^= state >> 7
            state ^= (state << 17) & mask
            frame += state & 0xFF
        visible += frame / (255.0 * grid)
    return round(100.0 * visible / samples, 2)
