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

A request costs the proxy one appended tuple (``exchange_ended``, ``Recorder.batched``); the
samples it makes are counted in bulk on the publisher's thread (``expand``), off the request
path (recorded one by one they cost ~14 µs of the event loop's time per request, and ~10 µs
of the process's on the sender's thread)."""

from __future__ import annotations

from typing import Callable, Iterator

from devenv.aws.metrics import MetricKey, Recorder

NAMESPACE = "AWS/ApplicationELB"

Ended = tuple[str, "int | None", float, "float | None"]  # group, status, sent_at, answered_at


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
        self._keys: dict[tuple[str, str | None], MetricKey] = {}
        self._ended = recorder.batched(self.expand)

    def _dimensions(self, group: str | None) -> dict[str, str]:
        return self._balancer if group is None else {**self._balancer, "TargetGroup": arn_dimension(self._arn(group))}

    def _sample(self, metric: str, group: str | None, value: float) -> None:
        series = self._series.get((metric, group))
        if series is None:
            unit = "Seconds" if metric == "TargetResponseTime" else "Count"
            series = self._series[(metric, group)] = self._recorder.series(
                NAMESPACE, metric, self._dimensions(group), unit, distribution=metric == "TargetResponseTime")
        series(value)

    def _key(self, metric: str, group: str | None) -> MetricKey:
        key = self._keys.get((metric, group))
        if key is None:
            unit = "Seconds" if metric == "TargetResponseTime" else "Count"
            key = self._keys[(metric, group)] = MetricKey.of(NAMESPACE, metric, self._dimensions(group), unit)
        return key

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
        its headers came (``answered_at``), else the load balancer's own (or none). One tuple
        kept; its samples are made by ``expand``."""
        self._ended((group, status, sent_at, answered_at))

    def expand(self, ended: list[Ended]) -> Iterator[tuple[MetricKey, list[float], bool]]:
        """The samples of ``ended`` requests, per metric: (key, values, distribution); the same
        samples ``target_answered`` and ``balancer_answered`` record."""
        values: dict[tuple[str, str | None], list[float]] = {}

        def add(metric: str, group: str | None, value: float) -> None:
            found = values.get((metric, group))
            if found is None:
                values[(metric, group)] = [value]
            else:
                found.append(value)

        for group, status, sent_at, answered_at in ended:
            code = status or 0
            for dims in (None, group):
                add("RequestCount", dims, 1.0)
                if answered_at is not None:
                    add("TargetResponseTime", dims, answered_at - sent_at)
                    if 200 <= code < 600:
                        add(f"HTTPCode_Target_{code // 100}XX_Count", dims, 1.0)
            if answered_at is None and 300 <= code < 600:
                add(f"HTTPCode_ELB_{code // 100}XX_Count", None, 1.0)
                if code in (502, 503, 504):
                    add(f"HTTPCode_ELB_{code}_Count", None, 1.0)
        for (metric, group), samples in values.items():
            yield self._key(metric, group), samples, metric == "TargetResponseTime"

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
