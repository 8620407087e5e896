"""CloudWatch metrics the stack publishes into the emulator, as AWS publishes its own.

``Aggregator`` is pure: samples in, one datapoint per metric and period out, carried as
``StatisticValues`` (SampleCount, Sum, Minimum, Maximum), so `get-metric-statistics` with
any period gives the same Average, Minimum and Maximum AWS would. A latency, whose
percentiles matter, is recorded as a distribution instead: its values (to 3 significant
digits) and how often each occurred, as ``Values`` and ``Counts`` (at most 150 per datum),
the raw data CloudWatch needs for p50/p90/p99. ``MetricPublisher`` is
the I/O: PutMetricData from one thread (``BackgroundSender``), at most 1,000 datapoints per
call, the datapoints kept while the emulator is unreachable (bounded).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

from .sender import BackgroundSender, refused

log = logging.getLogger("devenv.aws.metrics")

MAX_PER_CALL = 1000  # PutMetricData's limit of metrics per request
MAX_KEPT = 50_000  # datapoints kept while the emulator is unreachable
MAX_VALUES = 150  # PutMetricData's limit of Values (and Counts) per datum
DIGITS = 3  # significant digits a distribution keeps of a value


@dataclass(frozen=True)
class MetricKey:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    unit: str

    @classmethod
    def of(cls, namespace: str, name: str, dimensions: dict[str, str], unit: str = "None") -> MetricKey:
        return cls(namespace, name, tuple(sorted(dimensions.items())), unit)


# What ``Recorder.batched`` hands its items to, on the sender's thread: for each metric the
# items make, its key, its values and whether it is a distribution.
Expand = Callable[[list[Any]], Iterable[tuple[MetricKey, list[float], bool]]]


class Recorder(Protocol):
    """Where the compute plane's per-request samples go (``MetricPublisher``; a list in unit
    tests): ``series`` names one metric once and returns what records a sample of it, so a
    request pays for a dictionary lookup, not for naming its metrics again. ``batched``
    returns what keeps one item per request (a tuple, as it is: one list append, no lock),
    turned into samples by ``expand`` later, in bulk, off the request path."""

    def series(self, namespace: str, name: str, dimensions: dict[str, str], unit: str = "None", *,
               distribution: bool = False) -> Callable[[float], None]: ...

    def batched(self, expand: Expand) -> Callable[[Any], None]: ...


@dataclass
class _Stats:
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")
    values: list[float] | None = None  # a distribution's samples, counted when the period closes

    def add(self, value: float) -> None:
        if self.values is not None:  # the request path only appends: rounding waits for the sender
            self.values.append(value)
            return
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def extend(self, values: list[float]) -> None:
        if not values:
            return
        if self.values is not None:
            self.values.extend(values)
            return
        self.count += len(values)
        self.total += sum(values)
        self.low = min(self.low, min(values))
        self.high = max(self.high, max(values))

    def counted(self) -> list[tuple[float, int]]:
        """A distribution's values to ``DIGITS`` significant digits, each with how often it occurred."""
        found: dict[float, int] = {}
        for value in self.values or ():
            kept = float(f"{value:.{DIGITS}g}")
            found[kept] = found.get(kept, 0) + 1
        return sorted(found.items())


@dataclass
class Aggregator:
    """Samples of one period, per metric."""

    current: dict[MetricKey, _Stats] = field(default_factory=dict)

    def add(self, key: MetricKey, value: float, distribution: bool = False) -> None:
        stats = self.current.get(key)
        if stats is None:
            stats = self.current[key] = _Stats(values=[] if distribution else None)
        stats.add(float(value))

    def extend(self, key: MetricKey, values: list[float], distribution: bool = False) -> None:
        """Many samples of one metric at once."""
        stats = self.current.get(key)
        if stats is None:
            stats = self.current[key] = _Stats(values=[] if distribution else None)
        stats.extend(values)

    def close_period(self, end: float) -> list[tuple[str, dict]]:
        """The period's datapoints (``datapoints``); a new period begins."""
        return datapoints(self.take(), end)

    def take(self) -> dict[MetricKey, _Stats]:
        """The period's samples; a new period begins."""
        taken, self.current = self.current, {}
        return taken


def datapoints(period: dict[MetricKey, _Stats], end: float) -> list[tuple[str, dict]]:
    """A period's samples as (namespace, PutMetricData MetricData entry), stamped ``end``
    (seconds since the epoch). A distribution with more than 150 distinct values takes
    several entries (CloudWatch aggregates them)."""
    when = dt.datetime.fromtimestamp(end, dt.timezone.utc)
    out = []
    for key, s in period.items():
        head = {"MetricName": key.name, "Dimensions": [{"Name": n, "Value": v} for n, v in key.dimensions],
                "Timestamp": when, "Unit": key.unit}
        if s.values is None:
            out.append((key.namespace, {**head, "StatisticValues": {
                "SampleCount": s.count, "Sum": s.total, "Minimum": s.low, "Maximum": s.high}}))
            continue
        pairs = s.counted()
        for i in range(0, len(pairs), MAX_VALUES):
            chunk = pairs[i:i + MAX_VALUES]
            out.append((key.namespace, {**head, "Values": [v for v, _ in chunk],
                                        "Counts": [float(c) for _, c in chunk]}))
    return out


class MetricPublisher(BackgroundSender):
    """Publishes what ``record`` is given, one datapoint per metric every ``interval``
    seconds. ``client_factory`` makes the CloudWatch client (on first use): boto3's
    ``put_metric_data`` (``cloudwatch_client.CloudWatchClient``, or boto3's own)."""

    what = "CloudWatch"

    def __init__(self, client_factory: Callable[[], Any], *, interval: float = 10.0,
                 clock: Callable[[], float] = time.time, max_kept: int = MAX_KEPT):
        super().__init__(interval, "metrics")
        self._factory = client_factory
        self._client: Any = None
        self._clock = clock
        self._lock = threading.Lock()
        self._aggregator = Aggregator()
        self._unsent: list[tuple[str, dict]] = []
        self._max = max_kept
        self.sent = 0
        self.dropped = 0
        self.refused = 0  # datapoints the emulator refused outright, dropped
        self._samplers: list[Callable[[MetricPublisher], None]] = []
        self._batches: list[tuple[list[Any], Expand]] = []

    def add_sampler(self, sampler: Callable[[MetricPublisher], None]) -> MetricPublisher:
        """``sampler(self)`` runs on the sender's thread at the start of every cycle, for
        samples that take a blocking read (queue attributes); a failing one is skipped."""
        self._samplers.append(sampler)
        return self

    def record(self, namespace: str, name: str, value: float, dimensions: dict[str, str],
               unit: str = "None", *, distribution: bool = False) -> None:
        """One sample (from any thread; never blocks on I/O). ``distribution``: keep the
        values, for percentiles (a latency)."""
        key = MetricKey.of(namespace, name, dimensions, unit)
        with self._lock:
            self._aggregator.add(key, value, distribution)

    def series(self, namespace: str, name: str, dimensions: dict[str, str], unit: str = "None", *,
               distribution: bool = False) -> Callable[[float], None]:
        """What records samples of one metric (from any thread; never blocks on I/O)."""
        key = MetricKey.of(namespace, name, dimensions, unit)
        lock, aggregator = self._lock, self._aggregator

        def sample(value: float) -> None:
            with lock:
                aggregator.add(key, value, distribution)

        return sample

    def batched(self, expand: Expand) -> Callable[[Any], None]:
        """What keeps one item per request (from any thread: a list append, atomic without a
        lock); each cycle hands the items kept since the last to ``expand`` for their samples."""
        items: list[Any] = []
        with self._lock:
            self._batches.append((items, expand))
        return items.append

    def _expand_batches(self) -> None:
        for items, expand in self._batches:
            count = len(items)
            if not count:
                continue
            taken = items[:count]  # a copy and a delete, each atomic: an append meanwhile stays
            del items[:count]
            samples = list(expand(taken))
            with self._lock:
                for key, values, distribution in samples:
                    self._aggregator.extend(key, values, distribution)

    def _cycle(self, final: bool) -> bool:
        for sampler in self._samplers:
            try:
                sampler(self)
            except Exception as exc:  # the emulator is down: the send below says so
                log.debug("metrics sampler %r failed: %s", sampler, exc)
        self._expand_batches()
        with self._lock:
            taken = self._aggregator.take()
        closed = datapoints(taken, self._clock())  # counting distributions: outside the lock
        with self._lock:
            self._unsent.extend(closed)
            if len(self._unsent) > self._max:
                self.dropped += len(self._unsent) - self._max
                del self._unsent[: len(self._unsent) - self._max]
            pending, self._unsent = self._unsent, []
        by_namespace: dict[str, list[dict]] = {}
        for namespace, datum in pending:
            by_namespace.setdefault(namespace, []).append(datum)
        try:
            if self._client is None:
                self._client = self._factory()
            for namespace, data in by_namespace.items():
                while data:
                    try:
                        self._client.put_metric_data(Namespace=namespace, MetricData=data[:MAX_PER_CALL])
                        self.sent += len(data[:MAX_PER_CALL])
                    except Exception as exc:
                        if not refused(exc):
                            raise
                        # The same data would be refused on every retry, holding back the rest.
                        self.refused += len(data[:MAX_PER_CALL])
                        log.warning("%s: %d datapoints refused, dropped: %s", namespace, len(data[:MAX_PER_CALL]), exc)
                    del data[:MAX_PER_CALL]
        except Exception as exc:
            with self._lock:
                self._unsent[:0] = [(n, d) for n, data in by_namespace.items() for d in data]
            self._note_outage(exc)
            return False
        self._recovered()
        return True


def cloudwatch_client_factory(url: str, region: str, emulator_kind: str) -> Callable[[], Any]:
    """A CloudWatch client for the emulator at ``url``, one attempt per call: on devenv's moto
    (``emulator_kind`` "moto", which speaks CloudWatch's JSON protocol and stores it without
    moto's dispatch) the lean one, ``cloudwatch_client.py``; on any other emulator, not known
    to speak that protocol, boto3's."""
    if emulator_kind != "moto":
        from .endpoint import one_attempt_client_factory

        return one_attempt_client_factory("cloudwatch", url, region)
    from .cloudwatch_client import CloudWatchClient

    return lambda: CloudWatchClient(url, region)
