"""Trace context as AWS carries it between hops, and its W3C equivalent.

AWS passes one header along a request's path: ``X-Amzn-Trace-Id: Root=1-{8 hex epoch}-{24
hex};Parent={16 hex};Sampled=1`` (HTTP), ``Lambda-Runtime-Trace-Id`` / ``_X_AMZN_TRACE_ID``
(Lambda), ``TraceHeader`` (EventBridge PutEvents) and the ``AWSTraceHeader`` system
attribute (SQS). ``Root`` names the trace; ``Parent`` the span that made the call, so each
hop records a span whose parent is the incoming ``Parent`` and passes on its own id. The W3C
``traceparent`` (``00-{32 hex trace}-{16 hex span}-{flags}``) carries the same two ids: the
trace id is the root's hex digits without the version and dashes; W3C makes an all-zero
trace or parent id invalid, so a context without a parent has no ``traceparent``, and one
that carries a zero id is ignored. Pure functions only.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, replace
from typing import Mapping

HEADER = "X-Amzn-Trace-Id"
TRACEPARENT = "traceparent"

_ROOT = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
_SPAN = re.compile(r"^[0-9a-f]{16}$")
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_root(now: float | None = None) -> str:
    """A new X-Ray trace id: ``1-{epoch seconds, 8 hex}-{96 random bits, 24 hex}``. The bits
    identify a trace and guard nothing, so they come from ``random`` (no system call: ids are
    minted on every proxied request)."""
    seconds = int(time.time() if now is None else now)
    return "1-%08x-%024x" % (seconds & 0xFFFFFFFF, random.getrandbits(96))


def new_span_id() -> str:
    return "%016x" % (random.getrandbits(64) or 1)  # all zeros is W3C's "no parent"


@dataclass(frozen=True)
class TraceContext:
    """Where a call stands in a trace: the trace (``root``) and the calling span (``parent``)."""

    root: str
    parent: str | None = None
    sampled: bool = True

    @classmethod
    def new(cls, now: float | None = None) -> "TraceContext":
        return cls(new_root(now))

    @classmethod
    def parse(cls, header: str | None) -> "TraceContext | None":
        """An ``X-Amzn-Trace-Id`` value (fields in any order; ``Self`` and unknown fields
        ignored); None when it has no valid ``Root``."""
        if not header:
            return None
        fields: dict[str, str] = {}
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name and name not in fields:
                fields[name] = value.strip()
        root = fields.get("Root", "").lower()
        if not _ROOT.match(root):
            return None
        parent = fields.get("Parent", "").lower()
        return cls(root, parent if _SPAN.match(parent) else None, fields.get("Sampled", "1") != "0")

    @classmethod
    def from_traceparent(cls, value: str | None) -> "TraceContext | None":
        match = _TRACEPARENT.match((value or "").strip().lower())
        if not match or match.group(1) == "ff" or not int(match.group(2), 16) or not int(match.group(3), 16):
            return None
        trace = match.group(2)
        return cls(f"1-{trace[:8]}-{trace[8:]}", match.group(3), bool(int(match.group(4), 16) & 1))

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> "TraceContext | None":
        """From an HTTP request's headers: ``X-Amzn-Trace-Id`` first, else ``traceparent``."""
        lowered = {k.lower(): v for k, v in headers.items()}
        return cls.parse(lowered.get(HEADER.lower())) or cls.from_traceparent(lowered.get(TRACEPARENT))

    def child(self, span_id: str) -> "TraceContext":
        """The context to pass on from inside span ``span_id``."""
        return replace(self, parent=span_id)

    def header(self) -> str:
        parts = [f"Root={self.root}"]
        if self.parent:
            parts.append(f"Parent={self.parent}")
        parts.append(f"Sampled={1 if self.sampled else 0}")
        return ";".join(parts)

    def traceparent(self) -> str | None:
        """The W3C form; None without a parent (W3C has no "no parent" value: all zeros is invalid)."""
        if not self.parent or not int(self.parent, 16):
            return None
        trace = self.root[2:].replace("-", "")
        return f"00-{trace}-{self.parent}-{'01' if self.sampled else '00'}"


def root_of(value: str | None) -> str | None:
    """The trace id in a header value, or the value itself when it already is one."""
    if not value:
        return None
    if _ROOT.match(value.strip().lower()):
        return value.strip().lower()
    context = TraceContext.parse(value)
    return context.root if context else None
