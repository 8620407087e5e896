"""What a trace looks like as a waterfall, independent of where it is drawn (terminal, web).

Pure: spans in, rows out. Each row has its depth in the call tree, its offset and length as
fractions of the trace's duration, a label, and the attributes worth showing; views draw
the bar with as many cells or pixels as they have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .spans import Span, TraceSummary, waterfall

# Attributes shown beside a span, in this order, when present (views cope with any missing).
SHOWN = ("function", "cold", "request_id", "route", "method", "path", "status", "target", "task", "service",
         "bus", "source", "detail_type", "event_id", "targets", "queue", "message_id", "dead_letter_queue",
         "batch_size", "error")


@dataclass(frozen=True)
class Bar:
    span: Span
    depth: int
    offset_ms: float
    start: float  # fraction of the trace's duration, 0..1
    width: float  # fraction, > 0 so that a very short span still shows

    @property
    def failed(self) -> bool:
        return self.span.failed


def bars(spans: list[Span]) -> list[Bar]:
    """The waterfall rows of one trace, scaled to its duration."""
    rows = waterfall(spans)
    if not rows:
        return []
    origin = min(s.start for s in spans)
    total_ms = max((s.end - origin) * 1000 for s in spans) or 1.0
    found = []
    for row in rows:
        start = max(0.0, min(1.0, row.offset_ms / total_ms))
        width = max(0.0, min(1.0 - start, row.span.duration_ms / total_ms))
        found.append(Bar(row.span, row.depth, row.offset_ms, start, width))
    return found


def cells(bar: Bar, width: int) -> tuple[int, int]:
    """(first cell, number of cells) of the bar on a ``width``-cell track: at least one cell."""
    first = min(width - 1, int(bar.start * width))
    length = max(1, round(bar.width * width))
    return first, min(length, width - first)


def details(span: Span) -> list[tuple[str, str]]:
    """The attributes worth showing, known ones first, as text."""
    attrs = dict(span.attributes)
    shown: list[tuple[str, str]] = []
    for key in SHOWN:
        if key in attrs and attrs[key] not in (None, "", [], {}):
            shown.append((key, _text(attrs.pop(key))))
    for key in sorted(attrs):
        if attrs[key] not in (None, "", [], {}):
            shown.append((key, _text(attrs[key])))
    return shown


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def summary_json(summary: TraceSummary) -> dict[str, Any]:
    return {"trace": summary.trace_id, "start": summary.start, "ms": round(summary.duration_ms, 3),
            "spans": summary.spans, "errors": summary.errors, "first": summary.first,
            "components": list(summary.components)}


def trace_json(trace_id: str, spans: list[Span]) -> dict[str, Any]:
    """A trace as the web page draws it."""
    found = bars(spans)
    origin = min((s.start for s in spans), default=0.0)
    total = max(((s.end - origin) * 1000 for s in spans), default=0.0)
    return {"trace": trace_id, "start": origin, "ms": round(total, 3), "errors": sum(1 for s in spans if s.failed),
            "rows": [{"id": b.span.span_id, "parent": b.span.parent_id, "depth": b.depth,
                      "component": b.span.component, "op": b.span.operation, "offset_ms": round(b.offset_ms, 3),
                      "ms": round(b.span.duration_ms, 3), "start": b.start, "width": b.width,
                      "outcome": b.span.outcome, "details": details(b.span)} for b in found]}


__all__ = ["Bar", "bars", "cells", "details", "summary_json", "trace_json"]
