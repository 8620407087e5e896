"""The awslogs log driver: output lines of tasks and functions into CloudWatch Logs.

What the driver does on AWS, and so here: each line is one log event stamped with the time
it was read; lines are batched per log stream and sent with PutLogEvents within its limits
(10,000 events, 1,048,576 bytes counting 26 bytes per event, a span under 24 hours,
chronological order), never one call per line; with `awslogs-multiline-pattern` (or
`awslogs-datetime-format`) a line matching the pattern starts an event and the lines after
it join that event, so a traceback is one event; empty lines are not sent (CloudWatch
refuses empty messages).

``batches`` and ``Joiner`` are pure. ``LogShipper`` is the I/O: one daemon thread that
takes what the event loops hand it (``add`` and a ``Feed``'s calls never block and never
raise), sends it every ``interval``, keeps it while the emulator is unreachable (up to ``max_buffered`` events,
then drops the oldest and says how many), and creates the log group and stream on first
use, again after the emulator lost them (a restart). A batch the emulator refuses outright
(an error answer that is not transient) is dropped with a warning rather than retried
forever, which would hold back every stream behind it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from devenv.runtime.lines import OutputLines

from .sender import BackgroundSender, error_code, refused

log = logging.getLogger("devenv.awslogs")

# Seconds between sends. Each PutLogEvents costs the sending process CPU whatever its size
# (with botocore ~2 ms: signing, hooks, HTTP; the lean client less), once per stream, and
# the Lambda runtime has a stream per instance: sending every 0.2 s cost the compute
# process a third more CPU per invoke under load. Docker's awslogs driver sends every 5 s;
# 1 s keeps a line's lag to `aws logs tail` under a second at the median.
SEND_INTERVAL = 1.0

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26  # bytes CloudWatch counts per event on top of its message
MAX_SPAN_MS = 24 * 3600 * 1000 - 1  # the events of one batch span less than 24 hours
MULTILINE_WAIT_MS = 1000  # an open multi-line event is sent once no line joined it this long
MAX_BUFFERED = 100_000  # events kept per shipper while the emulator is unreachable

# strftime directives → regex, as Docker's awslogs driver translates awslogs-datetime-format
_DATETIME_DIRECTIVES = {
    "%a": r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)", "%A": r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
    "%b": r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
    "%B": r"(?:January|February|March|April|May|June|July|August|September|October|November|December)",
    "%d": r"(?:0[1-9]|[1,2][0-9]|3[0,1])", "%f": r"(?:\d{6})", "%H": r"(?:[0,1][0-9]|2[0-3])",
    "%I": r"(?:0[0-9]|1[0-2])", "%j": r"(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])",
    "%L": r"(?:\d{3})", "%m": r"(?:0[1-9]|1[0-2])", "%M": r"(?:[0-5][0-9])", "%p": r"(?:AM|PM)",
    "%S": r"(?:[0-5][0-9]|60)", "%U": r"(?:[0-4][0-9]|5[0-3])", "%w": r"[0-6]", "%W": r"(?:[0-4][0-9]|5[0-3])",
    "%y": r"(?:\d{2})", "%Y": r"(?:\d{4})", "%z": r"(?:[+-]\d{4})", "%Z": r"[A-Z]{1,4}T", "%%": "%",
}


def datetime_pattern(fmt: str) -> str:
    """``awslogs-datetime-format`` as the regex a line must start with to begin an event."""
    out, i = ["^"], 0
    while i < len(fmt):
        directive = fmt[i:i + 2]
        if directive in _DATETIME_DIRECTIVES:
            out.append(_DATETIME_DIRECTIVES[directive])
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return "".join(out)


class LogEvent(NamedTuple):
    """One event of a stream (a tuple: made for every line a Lambda instance or task prints,
    on the loop that serves them, where a frozen dataclass's __init__ cost three times as much)."""

    timestamp: int  # ms since the epoch
    message: str

    @property
    def size(self) -> int:
        return len(self.message.encode("utf-8", "replace")) + EVENT_OVERHEAD


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one source's lines go: a stream of a log group, in a region."""

    group: str
    stream: str
    region: str
    multiline: str | None = None  # regex: a matching line starts a new event


def batches(events: Iterable[LogEvent]) -> Iterator[list[LogEvent]]:
    """``events`` in chronological order, cut into PutLogEvents calls within its limits."""
    batch: list[LogEvent] = []
    size = 0
    for event in sorted(events, key=lambda e: e.timestamp):  # stable: lines of one ms keep their order
        if batch and (len(batch) == MAX_BATCH_EVENTS or size + event.size > MAX_BATCH_BYTES
                      or event.timestamp - batch[0].timestamp > MAX_SPAN_MS):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event.size
    if batch:
        yield batch


class Joiner:
    """Lines into events for one destination: one event per line, or, with a multi-line
    pattern, an event per matching line with the lines after it (pure; the caller gives
    the times)."""

    def __init__(self, pattern: str | None):
        self._pattern = re.compile(pattern) if pattern else None
        self._open: LogEvent | None = None  # the multi-line event still taking lines
        self._last_line = 0  # ms: when a line last joined the open event

    def feed(self, timestamp: int, line: str) -> list[LogEvent]:
        """Completed events after ``line``."""
        if self._pattern is None:
            return [LogEvent(timestamp, line)] if line else []
        done: list[LogEvent] = []
        if self._open is None or self._pattern.search(line):
            if self._open is not None:
                done.append(self._open)
            self._open = LogEvent(timestamp, line)
        else:
            self._open = LogEvent(self._open.timestamp, f"{self._open.message}\n{line}")
        self._last_line = timestamp
        return [e for e in done if e.message]

    @property
    def idle(self) -> bool:
        """No event open: nothing to lose by forgetting this joiner."""
        return self._open is None

    def due(self, now: int, wait: int = MULTILINE_WAIT_MS) -> list[LogEvent]:
        """The open event, once no line has joined it for ``wait`` ms (or at once with 0)."""
        if self._open is None or now - self._last_line < wait:
            return []
        event, self._open = self._open, None
        return [event] if event.message else []


class Feed:
    """One source's way into its stream, for the event loop that reads the source (a Lambda
    instance: its START/END/REPORT lines and what it prints, in order). Each call only stamps
    what it is given and appends it to a queue (a deque: no lock); the shipper's thread cuts
    the output into lines and makes the events once per send. Cutting, decoding and taking
    the shipper's lock per line on the loop cost the Lambda runtime ~3 µs a line."""

    __slots__ = ("destination", "_queue", "_clock", "_closed", "_lines")

    def __init__(self, destination: Destination, clock: Callable[[], float]):
        self.destination = destination
        self._queue: deque[tuple[int, str | bytes | None]] = deque()
        self._clock = clock
        self._closed = False
        self._lines = OutputLines()  # the shipper's thread's: output not yet cut into lines

    def line(self, text: str) -> None:
        """A whole line (without its newline)."""
        self._queue.append((int(self._clock() * 1000), text))

    def output(self, data: bytes) -> None:
        """Output as it was read: lines end at newlines, a line may come in several pieces."""
        self._queue.append((int(self._clock() * 1000), data))

    def close(self) -> None:
        """No more from this source: an unended last line goes as it is, then the feed is dropped."""
        if not self._closed:
            self._closed = True
            self._queue.append((int(self._clock() * 1000), None))

    def drain(self) -> list[tuple[int, str]]:
        """(timestamp, line) of what came since the last drain (the shipper's thread only)."""
        queue, lines, out = self._queue, self._lines, []
        for _ in range(len(queue)):  # what a loop appends meanwhile waits for the next drain
            when, item = queue.popleft()
            if type(item) is str:
                out.append((when, item))
            elif item is not None and not lines.pending and item[-1:] == b"\n" and len(item) <= lines.limit:
                # whole lines, as a print usually comes: decoded once, cut as text (a newline
                # byte is never inside a UTF-8 sequence, so the lines are the same)
                out.extend((when, line) for line in item[:-1].decode("utf-8", "replace").split("\n"))
            else:
                out.extend((when, line.decode("utf-8", "replace"))
                           for line in (lines.feed(item) if item is not None else lines.end()))
        return out

    @property
    def done(self) -> bool:
        return self._closed and not self._queue


@dataclass
class ShipperStats:
    shipped: int = 0
    dropped: int = 0  # over the buffer while the emulator was unreachable
    rejected: int = 0  # calls with some events rejected (too old, too new)
    refused: int = 0  # batches the emulator refused outright, dropped


class LogShipper(BackgroundSender):
    """Sends the lines it is given to CloudWatch Logs from its own thread (see the module
    docstring). ``client_factory(region)`` makes a boto3 ``logs`` client for the emulator."""

    what = "CloudWatch Logs"

    def __init__(self, client_factory: Callable[[str], Any], *, interval: float = SEND_INTERVAL,
                 max_buffered: int = MAX_BUFFERED, clock: Callable[[], float] = time.time):
        super().__init__(interval, "awslogs")
        self._factory = client_factory
        self._max = max_buffered
        self._clock = clock
        self._lock = threading.Lock()
        self._joiners: dict[Destination, Joiner] = {}
        self._feeds: list[Feed] = []
        self._ready: dict[Destination, list[LogEvent]] = {}  # events waiting to be sent
        self._buffered = 0
        self._clients: dict[str, Any] = {}
        self._created: set[tuple[str, str, str | None]] = set()  # (region, group, stream or None)
        self._dropped_reported = 0
        self.stats = ShipperStats()

    # -- the event loops' side: never blocks on I/O, never raises

    def add(self, destination: Destination, line: bytes | str, timestamp: int | None = None) -> None:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        when = int(self._clock() * 1000) if timestamp is None else timestamp
        with self._lock:
            self._line(destination, when, text)

    def feed(self, destination: Destination) -> Feed:
        """A source's ``Feed`` into ``destination`` (one per source, made once; ``close`` it
        when the source is gone)."""
        feed = Feed(destination, self._clock)
        with self._lock:
            self._feeds.append(feed)
        return feed

    # -- the shipper's thread

    def _line(self, destination: Destination, when: int, text: str) -> None:
        text = text.rstrip("\r\n")
        if destination.multiline is None:  # a line is an event: nothing to remember per stream
            if text:
                self._keep(destination, [LogEvent(when, text)])
            return
        joiner = self._joiners.get(destination)
        if joiner is None:
            joiner = self._joiners[destination] = Joiner(destination.multiline)
        self._keep(destination, joiner.feed(when, text))

    def _drain_feeds(self) -> None:
        for feed in self._feeds:
            destination = feed.destination
            if destination.multiline is None:  # the events made in one go, kept once
                self._keep(destination, [LogEvent(when, text) for when, line in feed.drain()
                                         if (text := line.rstrip("\r\n"))])
            else:
                for when, text in feed.drain():
                    self._line(destination, when, text)
        self._feeds = [feed for feed in self._feeds if not feed.done]

    def _keep(self, destination: Destination, events: list[LogEvent]) -> None:
        if events:
            self._ready.setdefault(destination, []).extend(events)
            self._buffered += len(events)
        while self._buffered > self._max:  # drop the oldest of the fullest stream
            fullest = max(self._ready.values(), key=len)
            del fullest[0]
            self._buffered -= 1
            self.stats.dropped += 1

    def _take(self, final: bool) -> dict[Destination, list[LogEvent]]:
        now = int(self._clock() * 1000)
        with self._lock:
            self._drain_feeds()
            for destination, joiner in list(self._joiners.items()):
                self._keep(destination, joiner.due(now, 0 if final else MULTILINE_WAIT_MS))
                if joiner.idle:  # a stream's task or instance may be gone for good: forget it
                    del self._joiners[destination]
            taken, self._ready, self._buffered = self._ready, {}, 0
        return {d: events for d, events in taken.items() if events}

    def _give_back(self, destination: Destination, events: list[LogEvent]) -> None:
        with self._lock:
            self._ready[destination] = events + self._ready.get(destination, [])
            self._buffered += len(events)
            self._keep(destination, [])

    def _cycle(self, final: bool) -> bool:
        """Sends what is ready; False when the emulator could not be reached (kept for later)."""
        pending = list(self._take(final).items())
        for index, (destination, events) in enumerate(pending):
            try:
                self._send(destination, events)  # on failure ``events`` is what was not sent
            except Exception as exc:  # the emulator is down or restarting: keep the events
                for later, more in pending[index:]:
                    self._give_back(later, more)
                self._note_outage(exc)
                return False
        self._recovered()
        return True

    def _send(self, destination: Destination, events: list[LogEvent]) -> None:
        client = self._client(destination.region)
        sent = 0
        try:
            for batch in batches(events):
                try:
                    self._deliver(client, destination, batch)
                except Exception as exc:
                    if not refused(exc):
                        raise
                    # The emulator answered no to this batch, and will to every retry: drop it.
                    self.stats.refused += 1
                    log.warning("%s %s: %d events refused, dropped: %s", destination.group, destination.stream,
                                len(batch), exc)
                sent += len(batch)
        except Exception:
            events[:] = sorted(events, key=lambda e: e.timestamp)[sent:]
            raise

    def _deliver(self, client: Any, destination: Destination, batch: list[LogEvent]) -> None:
        try:
            self._ensure(client, destination)
            self._put(client, destination, batch)
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            # The emulator restarted and lost the group: CreateLogStream (a new stream of a
            # group created before) or PutLogEvents says so. Create both again.
            self._forget(destination)
            self._ensure(client, destination)
            self._put(client, destination, batch)

    def _put(self, client: Any, destination: Destination, batch: list[LogEvent]) -> None:
        response = client.put_log_events(logGroupName=destination.group, logStreamName=destination.stream,
                                         logEvents=[{"timestamp": e.timestamp, "message": e.message} for e in batch])
        rejected = response.get("rejectedLogEventsInfo") or {}
        if rejected:
            self.stats.rejected += 1
            log.debug("%s %s: some events rejected: %s", destination.group, destination.stream, rejected)
        self.stats.shipped += len(batch)

    def _ensure(self, client: Any, destination: Destination) -> None:
        group_key = (destination.region, destination.group, None)
        if group_key not in self._created:
            _create(client.create_log_group, logGroupName=destination.group)
            self._created.add(group_key)
        stream_key = (destination.region, destination.group, destination.stream)
        if stream_key not in self._created:
            _create(client.create_log_stream, logGroupName=destination.group, logStreamName=destination.stream)
            self._created.add(stream_key)

    def _forget(self, destination: Destination) -> None:
        self._created = {k for k in self._created if (k[0], k[1]) != (destination.region, destination.group)}

    def _client(self, region: str) -> Any:
        client = self._clients.get(region)
        if client is None:
            client = self._clients[region] = self._factory(region)
        return client

    def _recovered(self) -> None:
        super()._recovered()
        if self.stats.dropped > self._dropped_reported:
            log.warning("%d log lines dropped while CloudWatch Logs was unreachable (over %d buffered)",
                        self.stats.dropped - self._dropped_reported, self._max)
            self._dropped_reported = self.stats.dropped


def _create(call: Callable[..., Any], **kwargs: Any) -> None:
    try:
        call(**kwargs)
    except Exception as exc:
        if error_code(exc) != "ResourceAlreadyExistsException":
            raise


def logs_client_factory(url: str) -> Callable[[str], Any]:
    """CloudWatch Logs clients for the emulator at ``url``, per region: the lean client
    (``logs_client.py``), one attempt per call (the shipper retries itself)."""
    from .logs_client import LogsClient

    return lambda region: LogsClient(url, region)
