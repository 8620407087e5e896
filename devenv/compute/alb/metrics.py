"""The internal ALB's CloudWatch metrics, as AWS/ApplicationELB publishes them, one sample per
request: ``RequestCount``, ``TargetResponseTime`` (seconds from the request sent to the target
to its response's headers, a distribution so p50/p90/p99 can be read),
``HTTPCode_Target_{2,3,4,5}XX_Count`` by ``LoadBalancer`` and by ``LoadBalancer`` and
``TargetGroup``; the load balancer's own answers (no rule, no healthy target, a target that
failed) as ``HTTPCode_ELB_{3,4,5}XX_Count`` (and ``_502_``, ``_503_``, ``_504_``) by
``LoadBalancer``; and per target group, sampled every publishing interval,
``HealthyHostCount`` and ``UnHealthyHostCount`` by ``LoadBalancer`` and ``TargetGroup``
(targets still in their first checks, draining or unused count in neither, as on AWS).
The dimensions' values are the ARNs' last parts, as AWS gives them
(``app/<name>/<id>``, ``targetgroup/<name>/<id>``).

A request costs the proxy one appended tuple (``exchange_ended``): with a recorder that runs
samplers before each publishing cycle (``MetricPublisher.add_sampler``), the tuples become
their six or so samples there, on the sender's thread, off the request path (they cost ~14 µs
of the event loop's time per request when recorded as they came)."""

from __future__ import annotations

from collections import deque
from typing import Callable

from devenv.aws.metrics import Recorder

NAMESPACE = "AWS/ApplicationELB"
MAX_ENDED = 100_000  # requests waiting for a flush beyond which the proxy samples them itself


def arn_dimension(arn: str) -> str:
    """``app/<name>/<id>`` of a load balancer's ARN, ``targetgroup/<name>/<id>`` of a target group's."""
    resource = arn.split(":", 5)[-1]
    return resource.removeprefix("loadbalancer/")


class AlbMetrics:
    """Samples for ``recorder`` (a ``MetricPublisher``); ``target_group_arn`` names a target
    group by its name. Each metric's series is named once, on first use."""

    def __init__(self, recorder: Recorder, load_balancer_arn: str, target_group_arn: Callable[[str], str]) -> None:
        self._recorder = recorder
        self._balancer = {"LoadBalancer": arn_dimension(load_balancer_arn)}
        self._arn = target_group_arn
        self._series: dict[tuple[str, str | None], Callable[[float], None]] = {}
        # Requests ended and not yet sampled: (group, status, sent_at, answered_at). A deque, as
        # the loop appends while the sender's thread pops (both atomic under the GIL).
        self._ended: deque[tuple[str, int | None, float, float | None]] | None = None
        add_sampler = getattr(recorder, "add_sampler", None)
        if add_sampler is not None:
            self._ended = deque()
            add_sampler(lambda _publisher: self.flush())

    def _sample(self, metric: str, group: str | None, value: float) -> None:
        series = self._series.get((metric, group))
        if series is None:
            dims = self._balancer if group is None else {**self._balancer,
                                                         "TargetGroup": arn_dimension(self._arn(group))}
            unit = "Seconds" if metric == "TargetResponseTime" else "Count"
            series = self._series[(metric, group)] = self._recorder.series(
                NAMESPACE, metric, dims, unit, distribution=metric == "TargetResponseTime")
        series(value)

    def target_answered(self, group: str, status: int, seconds: float | None) -> None:
        """A request forwarded to a target of ``group`` that answered ``status`` after
        ``seconds`` (None: no answer came, the load balancer answered, see ``balancer_answered``)."""
        for dims in (None, group):
            self._sample("RequestCount", dims, 1)
            if seconds is not None:
                self._sample("TargetResponseTime", dims, seconds)
                if 200 <= status < 600:
                    self._sample(f"HTTPCode_Target_{status // 100}XX_Count", dims, 1)

    def exchange_ended(self, group: str, status: int | None, sent_at: float, answered_at: float | None) -> None:
        """A request forwarded to ``group`` at ``sent_at`` has ended: the target's answer if
        its headers came (``answered_at``), else the load balancer's own (or none). Sampled
        at the next ``flush`` when the recorder runs samplers, else at once."""
        ended = self._ended
        if ended is not None:
            ended.append((group, status, sent_at, answered_at))
            if len(ended) > MAX_ENDED:  # nobody flushes (a publisher not running): bounded
                self.flush()
            return
        self._sample_ended(group, status, sent_at, answered_at)

    def flush(self) -> None:
        """Samples the requests ended since the last flush (any thread)."""
        ended = self._ended
        while ended:
            try:
                group, status, sent_at, answered_at = ended.popleft()
            except IndexError:  # another thread took the last one
                return
            self._sample_ended(group, status, sent_at, answered_at)

    def _sample_ended(self, group: str, status: int | None, sent_at: float, answered_at: float | None) -> None:
        if answered_at is not None:
            self.target_answered(group, status or 0, answered_at - sent_at)
        else:
            self.balancer_answered(status or 0, group)

    def target_health(self, group: str, healthy: int, unhealthy: int) -> None:
        """One sample of how many of ``group``'s targets are healthy and unhealthy."""
        self._sample("HealthyHostCount", group, healthy)
        self._sample("UnHealthyHostCount", group, unhealthy)

    def balancer_answered(self, status: int, group: str | None = None) -> None:
        """An answer of the load balancer itself; ``group`` when a target had been chosen
        (which makes it a request AWS counts)."""
        if group is not None:
            for dims in (None, group):
                self._sample("RequestCount", dims, 1)
        if 300 <= status < 600:
            self._sample(f"HTTPCode_ELB_{status // 100}XX_Count", None, 1)
            if status in (502, 503, 504):
                self._sample(f"HTTPCode_ELB_{status}_Count", None, 1)


__all__ = ["AlbMetrics", "NAMESPACE", "arn_dimension"]
