"""Reading component logs: the last lines of each, merged in time order, and following them,
each line with its level and, where known, its trace.

Each component writes its own file in .devenv/logs/; merging uses the order lines were
read in (files carry no common timestamp format), which is exact when following.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..runtime.process import tail

if TYPE_CHECKING:
    from .span_index import SpanIndex


class LogFollower:
    def __init__(self, files: Mapping[str, Path], *, poll_interval: float = 0.1):
        self._files = dict(files)
        self._offsets: dict[str, int] = {}
        self._partial: dict[str, str] = {}
        self._poll = poll_interval

    def history(self, lines: int) -> list[tuple[str, str]]:
        """The last ``lines`` lines of each file (component by component), and remembers
        where each file ends so ``follow`` prints only what comes after."""
        found: list[tuple[str, str]] = []
        for name, path in self._files.items():
            found.extend((name, line) for line in tail(path, lines))
            self._offsets[name] = path.stat().st_size if path.exists() else 0
        return found

    def read_new(self) -> list[tuple[str, str]]:
        """Complete lines written since the last call."""
        found: list[tuple[str, str]] = []
        for name, path in self._files.items():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            offset = self._offsets.get(name, 0)
            if size < offset:  # truncated or replaced: start again from the top
                offset = 0
            if size == offset:
                continue
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read(size - offset).decode(errors="replace")
            self._offsets[name] = size
            text = self._partial.pop(name, "") + chunk
            *complete, rest = text.split("\n")
            if rest:
                self._partial[name] = rest
            found.extend((name, line) for line in complete)
        return found

    def follow(self) -> Iterator[tuple[str, str]]:
        """New lines as they are written, until the caller stops iterating (Ctrl-C)."""
        while True:
            batch = self.read_new()
            yield from batch
            if not batch:
                time.sleep(self._poll)  # polling a file for growth; not synchronisation



# ---------------------------------------------------------------- lines with their trace and level

TRACE_ID = re.compile(r"\b1-[0-9a-f]{8}-[0-9a-f]{24}\b")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
REQUEST_ID = re.compile(rf"RequestId: ({_UUID})|^\[[A-Z]+\]\t[^\t]+\t({_UUID})\t", re.IGNORECASE)
_RUNTIME_LINE = re.compile(r"^(START|END|REPORT|INIT_REPORT) RequestId: ")
_LEVEL_WORD = re.compile(r"\b(DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL|PANIC)\b")
_LEVEL_JSON = re.compile(r'"(?:level|levelname|severity)"\s*:\s*"(\w+)"', re.IGNORECASE)
_RUNTIME_ERROR = re.compile(r"RequestId: \S+ Error: |Task timed out|^Traceback \(most recent call last\)")

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_ALIASES = {"notice": "info", "log": "info", "warn": "warning", "critical": "error", "fatal": "error",
            "panic": "error"}


def normal_level(name: str) -> str | None:
    name = name.lower()
    name = _ALIASES.get(name, name)
    return name if name in LEVELS else None


def level_of(text: str) -> str | None:
    """The level a line states (``INFO``, ``[ERROR]``, ``"level": "info"``, Lambda runtime
    errors), or None."""
    if _RUNTIME_ERROR.search(text):
        return "error"
    match = _LEVEL_JSON.search(text)
    if match and normal_level(match.group(1)):
        return normal_level(match.group(1))
    match = _LEVEL_WORD.search(text[:120])
    return normal_level(match.group(1)) if match else None


@dataclass(frozen=True)
class LogLine:
    source: str  # component, function or service
    text: str
    level: str  # debug, info, warning, error (info when the line does not say)
    trace_id: str | None = None
    request_id: str | None = None


class LogAnnotator:
    """Gives each line its level and, where known, its trace.

    A trace id written in the line (services log ``trace=<root>``) is taken as is. A function
    log line with a Lambda request id (START/END/REPORT, awslambdaric's log format) gets the
    trace of that invocation, through ``resolve`` (the lambda spans' ``request_id``); a
    function's own output between START and REPORT belongs to the one invocation open then
    (with several open, it stays unattributed). A line that states no level (a traceback's
    continuation) keeps the previous line's when it is indented or part of a traceback."""

    def __init__(self, resolve: Callable[[str], str | None] = lambda _: None):
        self._resolve = resolve
        self._open: dict[str, list[str]] = {}  # source -> request ids between START and REPORT
        self._learned: dict[str, str] = {}  # request id -> trace, from lines carrying both
        self._last_level: dict[str, str] = {}

    def request_of(self, source: str, text: str) -> str | None:
        """The request a line belongs to; updates which requests are open."""
        match = REQUEST_ID.search(text)
        request = (match.group(1) or match.group(2)).lower() if match else None
        opened = self._open.setdefault(source, [])
        if request is not None:
            if text.startswith("START ") and request not in opened:
                opened.append(request)
            elif text.startswith("REPORT ") and request in opened:
                opened.remove(request)
            return request
        return opened[0] if len(opened) == 1 else None

    def annotate(self, source: str, text: str, request: str | None = None) -> LogLine:
        explicit = TRACE_ID.search(text)
        trace = explicit.group(0) if explicit else None
        if request is not None:
            if trace is not None:
                self._learned[request] = trace
            else:
                trace = self._learned.get(request) or self._resolve(request)
        level = level_of(text)
        if level is None:
            previous = self._last_level.get(source, "info")
            continuation = text[:1].isspace() or text.startswith(("Traceback", "During handling"))
            level = previous if continuation and not _RUNTIME_LINE.match(text) else "info"
        self._last_level[source] = level
        return LogLine(source, text, level, trace, request)

    def known(self, request: str) -> bool:
        return request in self._learned or self._resolve(request) is not None


@dataclass(frozen=True)
class LogFilter:
    """Which lines to show: some sources, one trace (id, prefix or header), a minimum level."""

    sources: frozenset[str] | None = None
    trace: str | None = None
    level: str | None = None

    def __post_init__(self) -> None:
        if self.trace is not None:
            from .trace_context import root_of

            object.__setattr__(self, "trace", (root_of(self.trace) or self.trace).strip().lower())

    def __call__(self, line: LogLine) -> bool:
        if self.sources is not None and line.source not in self.sources:
            return False
        if self.level is not None and LEVELS[line.level] < LEVELS[self.level]:
            return False
        if self.trace is not None:
            found = line.trace_id or ""
            if not found or not (found.startswith(self.trace) or found.split("-")[-1].startswith(self.trace)):
                return False
        return True


class LogStream:
    """Component logs merged into annotated lines: history, then new lines as they come.

    While following, a function's invocation lines may be written before its lambda span
    (the span is recorded when the invocation ends), so a line whose request has no trace
    yet is held up to ``hold`` seconds, re-reading the span store, before it is shown
    without one; later lines of the same log wait behind it so each log stays in order."""

    def __init__(self, follower: LogFollower, spans: "SpanIndex | None" = None, *, hold: float = 1.5,
                 clock: Callable[[], float] = time.monotonic, refresh_every: float = 0.2):
        self._follower = follower
        self._spans = spans
        self._hold = hold
        self._clock = clock
        self._refresh_every = refresh_every
        self._refreshed = float("-inf")
        self.annotator = LogAnnotator(self._trace_of_request)
        self._pending: dict[str, list[tuple[float, str, str | None]]] = {}

    def _trace_of_request(self, request: str) -> str | None:
        return self._spans.trace_of_request(request) if self._spans is not None else None

    def _refresh(self, force: bool = False) -> None:
        now = self._clock()
        if self._spans is not None and (force or now - self._refreshed >= self._refresh_every):
            self._refreshed = now
            self._spans.refresh()

    def history(self, lines: int) -> list[LogLine]:
        raw = [(source, text, self.annotator.request_of(source, text))
               for source, text in self._follower.history(lines)]
        if any(request is not None and not TRACE_ID.search(text) for _, text, request in raw):
            self._refresh(force=True)  # only function lines need the spans (request id -> trace)
        return [self.annotator.annotate(source, text, request) for source, text, request in raw]

    def poll(self) -> list[LogLine]:
        """New lines ready to show (possibly none)."""
        now = self._clock()
        for source, text in self._follower.read_new():
            self._pending.setdefault(source, []).append((now, text, self.annotator.request_of(source, text)))
        if any(self._pending.values()):
            self._refresh()
        ready: list[LogLine] = []
        for source, queue in self._pending.items():
            while queue:
                arrived, text, request = queue[0]
                if self._spans is not None and request is not None and not TRACE_ID.search(text) \
                        and not self.annotator.known(request) and now - arrived < self._hold:
                    break
                queue.pop(0)
                ready.append(self.annotator.annotate(source, text, request))
        return ready

    def follow(self, poll_interval: float = 0.1) -> Iterator[LogLine]:
        while True:
            batch = self.poll()
            yield from batch
            if not batch:
                time.sleep(poll_interval)  # polling files for growth; not synchronisation


__all__ = ["LogFollower", "LogLine", "LogAnnotator", "LogFilter", "LogStream", "level_of", "LEVELS", "TRACE_ID"]
