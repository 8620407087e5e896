"""The validation decision, pure: given the video's metadata and the validated placements
already on that video, is a placement validated or rejected, and why. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from nedlia_common.numbers import fmt

VALIDATED = "validated"
REJECTED = "rejected"


@dataclass(frozen=True)
class Video:
    id: str
    duration_seconds: Decimal | None  # None: metadata not processed yet


@dataclass(frozen=True)
class Booked:
    """A validated placement of the same video."""

    placement_id: str
    start_seconds: Decimal
    end_seconds: Decimal


@dataclass(frozen=True)
class Decision:
    decision: str  # "validated" | "rejected"
    reason: str | None


class MetadataNotReady(Exception):
    """The video exists but its duration is not known yet: a transient condition (HTTP 409);
    the caller should retry later rather than record a decision."""

    def __init__(self, video_id: str):
        super().__init__(f"metadata for video {video_id} is not ready")
        self.video_id = video_id


def overlaps(start: Decimal, end: Decimal, other: Booked) -> bool:
    """Half-open intervals: [10, 20) and [20, 30) touch but do not overlap."""
    return start < other.end_seconds and other.start_seconds < end


def decide(video_id: str, video: Video | None, start: Decimal, end: Decimal,
           booked: list[Booked] | tuple[Booked, ...] = ()) -> Decision:
    """Checks in order: the video exists, its metadata is ready (else MetadataNotReady),
    the range is sane, it ends within the video, it overlaps no validated placement."""
    if video is None:
        return Decision(REJECTED, f"video {video_id} does not exist")
    if video.duration_seconds is None:
        raise MetadataNotReady(video_id)
    if start < 0 or end <= start:
        return Decision(REJECTED, f"invalid time range {fmt(start)}-{fmt(end)} s")
    if end > video.duration_seconds:
        return Decision(REJECTED, f"placement ends at {fmt(end)} s, after the video's end "
                                  f"({fmt(video.duration_seconds)} s)")
    clashes = sorted((b for b in booked if overlaps(start, end, b)),
                     key=lambda b: (b.start_seconds, b.placement_id))
    if clashes:
        first = clashes[0]
        return Decision(REJECTED, f"overlaps validated placement {first.placement_id} "
                                  f"({fmt(first.start_seconds)}-{fmt(first.end_seconds)} s)")
    return Decision(VALIDATED, None)
