"""API Gateway's CloudWatch metrics, as AWS/ApiGateway publishes a REST API's, one sample
per request by ``ApiName`` and by ``ApiName`` and ``Stage``: ``Count``, ``4XXError`` and
``5XXError`` (0 or 1, so Sum counts them and Average is their rate), ``Latency`` (ms from
the request received to the response sent) and ``IntegrationLatency`` (ms the Lambda
integration took, for requests that reached it), both distributions so p50/p90/p99 can be read.

A request costs one tuple appended (``Recorder.batched``); the ten samples it makes are
counted in bulk on the publisher's thread (``expand``)."""

from __future__ import annotations

from typing import Iterator

from devenv.aws.metrics import MetricKey, Recorder

NAMESPACE = "AWS/ApiGateway"

Answer = tuple[int, float, "float | None"]  # status, latency ms, integration ms (None: not reached)


class ApiMetrics:
    """Samples of one API's stage for ``recorder`` (a ``MetricPublisher``)."""

    def __init__(self, recorder: Recorder, api: str, stage: str) -> None:
        self._dimensions = ({"ApiName": api}, {"ApiName": api, "Stage": stage})

        def keys(metric: str, unit: str) -> tuple[MetricKey, ...]:
            return tuple(MetricKey.of(NAMESPACE, metric, dims, unit) for dims in self._dimensions)

        self._count, self._4xx, self._5xx = keys("Count", "Count"), keys("4XXError", "Count"), keys("5XXError", "Count")
        self._latency, self._integration = keys("Latency", "Milliseconds"), keys("IntegrationLatency", "Milliseconds")
        self._add = recorder.batched(self.expand)

    def answered(self, status: int, latency_ms: float, integration_ms: float | None) -> None:
        self._add((status, latency_ms, integration_ms))

    def expand(self, answers: list[Answer]) -> Iterator[tuple[MetricKey, list[float], bool]]:
        """The samples of ``answers``, per metric: (key, values, distribution)."""
        count = [1.0] * len(answers)
        client = [1.0 if 400 <= status < 500 else 0.0 for status, _, _ in answers]
        server = [1.0 if status >= 500 else 0.0 for status, _, _ in answers]
        latency = [float(ms) for _, ms, _ in answers]
        integration = [float(ms) for _, _, ms in answers if ms is not None]
        for i in (0, 1):
            yield self._count[i], count, False
            yield self._4xx[i], client, False
            yield self._5xx[i], server, False
            yield self._latency[i], latency, True
            if integration:
                yield self._integration[i], integration, True


__all__ = ["ApiMetrics", "NAMESPACE"]
