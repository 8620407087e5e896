"""API Gateway's CloudWatch metrics, as AWS/ApiGateway publishes a REST API's, one sample
per request by ``ApiName`` and by ``ApiName`` and ``Stage``: ``Count``, ``4XXError`` and
``5XXError`` (0 or 1, so Sum counts them and Average is their rate), ``Latency`` (ms from
the request received to the response sent) and ``IntegrationLatency`` (ms the Lambda
integration took, for requests that reached it), both distributions so p50/p90/p99 can be read."""

from __future__ import annotations

from typing import Callable

from devenv.aws.metrics import Recorder

NAMESPACE = "AWS/ApiGateway"


class ApiMetrics:
    """Samples of one API's stage for ``recorder`` (a ``MetricPublisher``)."""

    def __init__(self, recorder: Recorder, api: str, stage: str) -> None:
        def series(metric: str, unit: str, distribution: bool = False) -> tuple[Callable[[float], None], ...]:
            return tuple(recorder.series(NAMESPACE, metric, dims, unit, distribution=distribution)
                         for dims in ({"ApiName": api}, {"ApiName": api, "Stage": stage}))

        self._count, self._4xx, self._5xx = series("Count", "Count"), series("4XXError", "Count"), series(
            "5XXError", "Count")
        self._latency = series("Latency", "Milliseconds", True)
        self._integration = series("IntegrationLatency", "Milliseconds", True)

    def answered(self, status: int, latency_ms: float, integration_ms: float | None) -> None:
        client, server = int(400 <= status < 500), int(status >= 500)
        for i in (0, 1):
            self._count[i](1)
            self._4xx[i](client)
            self._5xx[i](server)
            self._latency[i](latency_ms)
            if integration_ms is not None:
                self._integration[i](integration_ms)


__all__ = ["ApiMetrics", "NAMESPACE"]
