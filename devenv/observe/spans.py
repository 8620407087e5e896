"""Spans: one record per hop a request makes through the stack, kept in ``.devenv/traces/``.

Every process that owns hops (the compute process, the ECS process, the emulator launcher)
appends its spans as JSON lines to a file of its own (``<component>-<pid>.jsonl``), one
``write`` per span with ``O_APPEND``: no lock between processes, nothing lost when one
dies, and the files outlive the supervisor so a restarted stack still shows old traces.
A file is rotated to ``.old`` past a size limit, and old files are pruned when the folder
grows past its budget. Readers merge every file.

The writing side is a ``SpanSink`` protocol (``record(span)``) so components take a sink
and unit tests pass a list; ``SPANS_DIR_ENV`` tells child processes where to write.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence

from .trace_context import TraceContext, new_span_id

SPANS_DIR_ENV = "DEVENV_SPANS_DIR"
FILE_LIMIT = 8 * 1024 * 1024  # bytes per span file before it is rotated
FOLDER_BUDGET = 64 * 1024 * 1024  # bytes of span files kept in all


class Outcome:
    """Values of ``Span.outcome``."""

    OK = "ok"
    ERROR = "error"


# One encoder for every span: json.dumps with options builds a new one per call (5.1 µs a
# span against 7.9 µs, and every hop of every request writes one).
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Span:
    trace_id: str  # the X-Ray root, 1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy
    span_id: str
    parent_id: str | None
    component: str  # apigateway, lambda, alb, ecs, events, sqs, event-source, ...
    operation: str  # e.g. "POST /placements", "invoke api", "PutEvents nedlia"
    start: float  # epoch seconds
    duration_ms: float
    outcome: str = Outcome.OK
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.start + self.duration_ms / 1000

    @property
    def failed(self) -> bool:
        return self.outcome != Outcome.OK

    def to_json(self) -> str:
        return _ENCODER.encode({"trace": self.trace_id, "id": self.span_id, "parent": self.parent_id,
                                "component": self.component, "op": self.operation, "start": round(self.start, 6),
                                "ms": round(self.duration_ms, 3), "outcome": self.outcome,
                                "attrs": dict(self.attributes)})

    @classmethod
    def from_json(cls, line: str) -> "Span | None":
        try:
            data = json.loads(line)
            return cls(str(data["trace"]), str(data["id"]), data.get("parent"), str(data["component"]),
                       str(data["op"]), float(data["start"]), float(data["ms"]), str(data.get("outcome", "ok")),
                       dict(data.get("attrs") or {}))
        except (ValueError, KeyError, TypeError):
            return None  # a torn last line of a killed writer, or not ours


class SpanSink(Protocol):
    def record(self, span: Span) -> None: ...

    def record_all(self, spans: Sequence[Span]) -> None:
        """``spans`` in their order, as ``record`` would take them one by one (a file sink: in
        one write)."""
        ...


class NullSink:
    """Tracing off."""

    def record(self, span: Span) -> None:
        return None

    def record_all(self, spans: Sequence[Span]) -> None:
        return None


class FileSpanSink:
    """Appends spans to ``<folder>/<name>-<pid>.jsonl``. Safe from any thread: one write per
    span, under a lock, since a rotation closes the descriptor another thread may be about
    to write to (and the number may by then belong to another file or socket)."""

    def __init__(self, folder: Path, name: str, *, file_limit: int = FILE_LIMIT,
                 folder_budget: int = FOLDER_BUDGET):
        self.folder = Path(folder)
        self.path = self.folder / f"{name}-{os.getpid()}.jsonl"
        self._limit = file_limit
        self._budget = folder_budget
        self._fd: int | None = None
        self._size = 0
        self._lock = threading.Lock()

    def _open(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        prune(self.folder, self._budget)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = os.fstat(fd).st_size
        return fd

    def record(self, span: Span) -> None:
        data = (span.to_json() + "\n").encode()
        with self._lock:
            self._append(data)

    def record_all(self, spans: Sequence[Span]) -> None:
        """One write for all of ``spans`` (the X-Ray daemon's: a segment and its subsegments)."""
        if spans:
            data = "".join([span.to_json() + "\n" for span in spans]).encode()
            with self._lock:
                self._append(data)

    def _append(self, data: bytes) -> None:
        try:
            if self._fd is None:
                self._fd = self._open()
            if self._size + len(data) > self._limit:
                os.close(self._fd)
                os.replace(self.path, self.path.with_suffix(".old"))
                self._fd = self._open()
            os.write(self._fd, data)
            self._size += len(data)
        except OSError:
            pass  # tracing must never break the hop it observes

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def sink_from_environment(name: str, environ: Mapping[str, str] | None = None) -> SpanSink:
    """The sink a child process uses: ``DEVENV_SPANS_DIR`` set by the supervisor, or none."""
    folder = (environ if environ is not None else os.environ).get(SPANS_DIR_ENV)
    return FileSpanSink(Path(folder), name) if folder else NullSink()


def prune(folder: Path, budget: int) -> None:
    """Delete the oldest span files until the folder fits its budget."""
    try:
        files = sorted((p for p in folder.iterdir() if p.suffix in (".jsonl", ".old")),
                       key=lambda p: p.stat().st_mtime)
        sizes = {p: p.stat().st_size for p in files}
    except OSError:
        return
    total = sum(sizes.values())
    for path in files:
        if total <= budget:
            break
        try:
            path.unlink()
        except OSError:
            continue
        total -= sizes[path]


class SpanTimer:
    """A span being timed: ``context`` is what to pass downstream (its own id as Parent)."""

    def __init__(self, sink: SpanSink, incoming: TraceContext | None, component: str, operation: str,
                 attributes: Mapping[str, Any] | None = None):
        self.sink = sink
        self.incoming = incoming or TraceContext.new()
        self.span_id = new_span_id()
        self.context = self.incoming.child(self.span_id)
        self.component = component
        self.operation = operation
        self.attributes: dict[str, Any] = dict(attributes or {})
        self.start = time.time()
        self._t0 = time.perf_counter()
        self.done = False

    def finish(self, outcome: str = Outcome.OK, **attributes: Any) -> Span:
        self.attributes.update(attributes)
        span = Span(self.incoming.root, self.span_id, self.incoming.parent, self.component, self.operation,
                    self.start, (time.perf_counter() - self._t0) * 1000, outcome, self.attributes)
        if not self.done:
            self.done = True
            self.sink.record(span)
        return span


# -- reading


def read_spans(folder: Path) -> Iterator[Span]:
    """Every span in the folder's files (rotated ones included), in no particular order."""
    try:
        paths = [p for p in Path(folder).iterdir() if p.suffix in (".jsonl", ".old")]
    except OSError:
        return
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    span = Span.from_json(line)
                    if span is not None:
                        yield span
        except OSError:
            continue


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    start: float
    duration_ms: float
    spans: int
    errors: int
    first: str  # the earliest span's component and operation
    components: tuple[str, ...]


def group_traces(spans: Iterable[Span]) -> dict[str, list[Span]]:
    traces: dict[str, list[Span]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    for members in traces.values():
        members.sort(key=lambda s: (s.start, s.span_id))
    return traces


def summarise(trace_id: str, spans: list[Span]) -> TraceSummary:
    start = min(s.start for s in spans)
    end = max(s.end for s in spans)
    components: list[str] = []
    for span in spans:
        if span.component not in components:
            components.append(span.component)
    first = spans[0]
    return TraceSummary(trace_id, start, (end - start) * 1000, len(spans), sum(1 for s in spans if s.failed),
                        f"{first.component} {first.operation}", tuple(components))


def recent_traces(spans: Iterable[Span], limit: int = 20, *, errors_only: bool = False) -> list[TraceSummary]:
    """The latest traces first (by their first span's start)."""
    summaries = [summarise(t, members) for t, members in group_traces(spans).items()]
    if errors_only:
        summaries = [s for s in summaries if s.errors]
    summaries.sort(key=lambda s: s.start, reverse=True)
    return summaries[:limit]


def find_trace(spans: Iterable[Span], wanted: str) -> tuple[str, list[Span]] | None:
    """The trace whose id is ``wanted`` (an id, a header with ``Root=``, a prefix of either
    part, or a span/message/request id found in a span's attributes)."""
    from .trace_context import root_of

    key = (root_of(wanted) or wanted).strip().lower()
    traces = group_traces(spans)
    if key in traces:
        return key, traces[key]
    matches = [t for t in traces if t.startswith(key) or t.split("-")[-1].startswith(key)]
    if not matches:
        matches = [t for t, members in traces.items()
                   if any(s.span_id == key or key in _attribute_values(s) for s in members)]
    if len(matches) != 1:
        return None
    return matches[0], traces[matches[0]]


def _attribute_values(span: Span) -> set[str]:
    """Every attribute value as lowercase text, list attributes element by element."""
    values: set[str] = set()
    for value in span.attributes.values():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            values.add(str(item).lower())
    return values


@dataclass(frozen=True)
class WaterfallRow:
    span: Span
    depth: int
    offset_ms: float  # from the trace's start


def waterfall(spans: list[Span]) -> list[WaterfallRow]:
    """Spans in tree order (children under their parent, siblings by start), with depth.

    A span whose parent is not in the trace (a hop devenv does not own, such as the code
    inside a task) hangs under the latest span that started before it and is still open,
    else at the top."""
    if not spans:
        return []
    origin = min(s.start for s in spans)
    by_id = {s.span_id: s for s in spans}
    children: dict[str | None, list[Span]] = {}
    ordered = sorted(spans, key=lambda s: (s.start, s.span_id))
    for span in ordered:
        parent = span.parent_id if span.parent_id in by_id and span.parent_id != span.span_id else None
        if parent is None and span.parent_id is not None:
            enclosing = [s for s in ordered if s is not span and s.start <= span.start and s.end >= span.end]
            parent = enclosing[-1].span_id if enclosing else None
        children.setdefault(parent, []).append(span)
    rows: list[WaterfallRow] = []
    seen: set[str] = set()

    def walk(parent: str | None, depth: int) -> None:
        for child in children.get(parent, []):
            if child.span_id in seen:
                continue
            seen.add(child.span_id)
            rows.append(WaterfallRow(child, depth, (child.start - origin) * 1000))
            walk(child.span_id, depth + 1)

    walk(None, 0)
    for span in ordered:  # cycles or orphans: never drop a span
        if span.span_id not in seen:
            rows.append(WaterfallRow(span, 0, (span.start - origin) * 1000))
    return rows
