"""CloudWatch metrics the stack publishes into the emulator, as AWS publishes its own.

``Aggregator`` is pure: samples in, one datapoint per metric and period out, carried as
``StatisticValues`` (SampleCount, Sum, Minimum, Maximum), so `get-metric-statistics` with
any period gives the same Average, Minimum and Maximum AWS would. ``MetricPublisher`` is
the I/O: PutMetricData from one thread (``BackgroundSender``), at most 1,000 datapoints per
call, the datapoints kept while the emulator is unreachable (bounded).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .sender import BackgroundSender, refused

log = logging.getLogger("devenv.aws.metrics")

MAX_PER_CALL = 1000  # PutMetricData's limit of metrics per request
MAX_KEPT = 50_000  # datapoints kept while the emulator is unreachable


@dataclass(frozen=True)
class MetricKey:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    unit: str


@dataclass
class _Stats:
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)


@dataclass
class Aggregator:
    """Samples of one period, per metric."""

    current: dict[MetricKey, _Stats] = field(default_factory=dict)

    def add(self, key: MetricKey, value: float) -> None:
        self.current.setdefault(key, _Stats()).add(float(value))

    def close_period(self, end: float) -> list[tuple[str, dict]]:
        """The period's datapoints as (namespace, PutMetricData MetricData entry), stamped
        ``end`` (seconds since the epoch); a new period begins."""
        when = dt.datetime.fromtimestamp(end, dt.timezone.utc)
        out = [(key.namespace, {
            "MetricName": key.name,
            "Dimensions": [{"Name": n, "Value": v} for n, v in key.dimensions],
            "Timestamp": when, "Unit": key.unit,
            "StatisticValues": {"SampleCount": s.count, "Sum": s.total, "Minimum": s.low, "Maximum": s.high},
        }) for key, s in self.current.items()]
        self.current = {}
        return out


class MetricPublisher(BackgroundSender):
    """Publishes what ``record`` is given, one datapoint per metric every ``interval``
    seconds. ``client`` is a boto3 ``cloudwatch`` client (made on first use)."""

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

    def add_sampler(self, sampler: Callable[[MetricPublisher], None]) -> MetricPublisher:
        """``sampler(self)`` runs on the sender's thread at the start of every cycle, for
        samples that take a blocking read (queue attributes); a failing one is skipped."""
        self._samplers.append(sampler)
        return self

    def record(self, namespace: str, name: str, value: float, dimensions: dict[str, str],
               unit: str = "None") -> None:
        """One sample (from any thread; never blocks on I/O)."""
        key = MetricKey(namespace, name, tuple(sorted(dimensions.items())), unit)
        with self._lock:
            self._aggregator.add(key, value)

    def _cycle(self, final: bool) -> bool:
        for sampler in self._samplers:
            try:
                sampler(self)
            except Exception as exc:  # the emulator is down: the send below says so
                log.debug("metrics sampler %r failed: %s", sampler, exc)
        with self._lock:
            self._unsent.extend(self._aggregator.close_period(self._clock()))
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


def cloudwatch_client_factory(url: str, region: str) -> Callable[[], Any]:
    """A boto3 ``cloudwatch`` client for the emulator at ``url``, one attempt per call."""
    from .endpoint import one_attempt_client_factory

    return one_attempt_client_factory("cloudwatch", url, region)
