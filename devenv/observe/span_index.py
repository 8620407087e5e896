"""An incremental reader of the span folder, for views that follow it (logs -f, the dashboards).

``read_spans`` (spans.py) reads every file from the top; a view that refreshes every second
would re-parse megabytes each time. ``SpanIndex`` remembers how far it read each file and
parses only what was appended since (a file that shrank, i.e. was rotated or pruned, is
read again from the top). It keeps the newest ``capacity`` spans and an index of Lambda
request ids to trace ids, which is how function log lines find their trace.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

from .spans import Span


class SpanIndex:
    def __init__(self, folder: Path, *, capacity: int = 50_000):
        self.folder = Path(folder)
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, bytes] = {}
        self._spans: deque[Span] = deque(maxlen=capacity)
        self._seen: set[tuple[str, str]] = set()
        self._requests: dict[str, str] = {}

    @property
    def spans(self) -> list[Span]:
        return list(self._spans)

    def trace_of_request(self, request_id: str) -> str | None:
        """The trace of a Lambda invocation, from the lambda span's ``request_id`` attribute."""
        return self._requests.get(request_id.lower())

    def refresh(self) -> list[Span]:
        """Reads what was appended since the last call; returns the new spans."""
        try:
            paths = _oldest_first(p for p in self.folder.iterdir() if p.suffix in (".jsonl", ".old"))
        except OSError:
            return []
        found: list[Span] = []
        for path in paths:
            try:
                size = path.stat().st_size
            except OSError:
                continue
            offset = self._offsets.get(path, 0)
            if size < offset:  # rotated or replaced: read it again (duplicates are skipped)
                offset = 0
                self._partial.pop(path, None)
            if size == offset:
                continue
            try:
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read(size - offset)
            except OSError:
                continue
            self._offsets[path] = size
            data = self._partial.pop(path, b"") + chunk
            *lines, rest = data.split(b"\n")
            if rest:
                self._partial[path] = rest
            for line in lines:
                span = Span.from_json(line.decode("utf-8", errors="replace"))
                if span is not None and self._add(span):
                    found.append(span)
        return found

    def _add(self, span: Span) -> bool:
        key = (span.trace_id, span.span_id)
        if key in self._seen:
            return False
        if len(self._spans) == self._spans.maxlen:
            oldest = self._spans[0]
            self._seen.discard((oldest.trace_id, oldest.span_id))
            if oldest.attributes.get("request_id"):
                self._requests.pop(str(oldest.attributes["request_id"]).lower(), None)
        self._seen.add(key)
        self._spans.append(span)
        request = span.attributes.get("request_id")
        if request:
            self._requests[str(request).lower()] = span.trace_id
        return True


def _oldest_first(paths) -> list[Path]:
    """Files by last write, oldest first, so that when more spans exist than ``capacity``
    the ones kept are the newest (by name, ``ecs-*`` would go before ``lambda-*`` and a
    rotated ``.old`` after its newer ``.jsonl``, whatever their age)."""
    dated = []
    for path in paths:
        try:
            dated.append((path.stat().st_mtime_ns, path.name, path))
        except OSError:  # removed meanwhile (pruned)
            continue
    return [path for _, _, path in sorted(dated)]


__all__ = ["SpanIndex"]
