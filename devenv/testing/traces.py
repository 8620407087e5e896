"""The stack's spans, for tests: the spans of one trace, waited for with a deadline."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from devenv.health import wait_until
from devenv.observe.spans import Span, find_trace, read_spans
from devenv.observe.trace_context import root_of


class Traces:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def spans(self, trace: str) -> list[Span]:
        """The spans of a trace (an id, a header value or another id a span carries), by start."""
        found = find_trace(read_spans(self.folder), root_of(trace) or trace)
        return found[1] if found else []

    def wait_for(self, trace: str, condition: Callable[[list[Span]], bool], *, timeout: float = 20.0,
                 what: str = "the trace") -> list[Span]:
        """The trace's spans once ``condition`` holds for them; AssertionError past the deadline."""
        holder: dict[str, list[Span]] = {"spans": []}

        def check() -> bool:
            holder["spans"] = self.spans(trace)
            return condition(holder["spans"])

        if not wait_until(check, timeout=timeout, interval=0.1):
            seen = ", ".join(f"{s.component} {s.operation}" for s in holder["spans"]) or "no spans"
            raise AssertionError(f"{what} did not complete within {timeout:g}s (saw: {seen})")
        return holder["spans"]
