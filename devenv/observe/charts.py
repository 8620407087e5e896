"""The web dashboard's charts, pure: which CloudWatch series a stack's config has, the
GetMetricData queries that read them, and the plotted form of the answer.

The charts read the same series the stack publishes into the emulator's CloudWatch
(``aws/metrics.py``: the ECS scheduler, the Lambda runtime, the queue sampler), so what a
chart shows is what `aws cloudwatch get-metric-statistics` returns and what target
tracking acted on: per service its CPU against the autoscaling target and its running and
desired task counts; per function invocations, errors and duration; per queue its depth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..config.model import StackConfig


@dataclass(frozen=True)
class Series:
    label: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    unit: str
    series: tuple[Series, ...]
    target: float | None = None  # drawn as a dashed line (the autoscaling target)


def charts(config: StackConfig) -> list[Chart]:
    """Every chart of the stack, services first. The stack's ECS cluster is named after the
    stack (``ecs_process``), and its metrics carry that name."""
    found: list[Chart] = []
    for name, service in config.services.items():
        dims = (("ClusterName", config.name), ("ServiceName", name))
        scaling = service.autoscaling
        found.append(Chart(f"cpu:{name}", f"{name} · CPU", "%", (
            Series("average", "AWS/ECS", "CPUUtilization", dims, "Average"),
            Series("maximum", "AWS/ECS", "CPUUtilization", dims, "Maximum"),
        ), target=scaling.target_cpu if scaling is not None else None))
        found.append(Chart(f"tasks:{name}", f"{name} · tasks", "tasks", (
            Series("running", "ECS/ContainerInsights", "RunningTaskCount", dims, "Maximum"),
            Series("desired", "ECS/ContainerInsights", "DesiredTaskCount", dims, "Maximum"),
        )))
    for name in config.functions:
        dims = (("FunctionName", name),)
        found.append(Chart(f"invocations:{name}", f"λ {name} · invocations", "count", (
            Series("invocations", "AWS/Lambda", "Invocations", dims, "Sum"),
            Series("errors", "AWS/Lambda", "Errors", dims, "Sum"),
            Series("throttles", "AWS/Lambda", "Throttles", dims, "Sum"),
        )))
        found.append(Chart(f"duration:{name}", f"λ {name} · duration", "ms", (
            Series("average", "AWS/Lambda", "Duration", dims, "Average"),
            Series("maximum", "AWS/Lambda", "Duration", dims, "Maximum"),
        )))
    for name in config.queues:
        dims = (("QueueName", name),)
        found.append(Chart(f"queue:{name}", f"queue {name}", "messages", (
            Series("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", dims, "Maximum"),
            Series("in flight", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", dims, "Maximum"),
        )))
    return found


def series_id(chart: int, series: int) -> str:
    """A GetMetricData query id (``^[a-z][a-zA-Z0-9_]*$``) naming the chart and series."""
    return f"c{chart}_s{series}"


def queries(found: Iterable[Chart], period: int) -> list[dict[str, Any]]:
    """GetMetricData's MetricDataQueries for every series (at most 500 per call: the caller
    splits)."""
    out = []
    for c, chart in enumerate(found):
        for s, series in enumerate(chart.series):
            out.append({"Id": series_id(c, s), "Label": series.label, "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": series.namespace, "MetricName": series.metric,
                           "Dimensions": [{"Name": k, "Value": v} for k, v in series.dimensions]},
                "Period": period, "Stat": series.stat}})
    return out


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    return float(value)


def plotted(found: Iterable[Chart], results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The charts as the page draws them: per series its (epoch seconds, value) points in
    time order, from GetMetricData's MetricDataResults."""
    by_id = {r["Id"]: r for r in results}
    out = []
    for c, chart in enumerate(found):
        series = []
        for s, one in enumerate(chart.series):
            result = by_id.get(series_id(c, s), {})
            points = sorted(zip((_epoch(t) for t in result.get("Timestamps", ())), result.get("Values", ())))
            series.append({"label": one.label, "metric": f"{one.namespace} {one.metric} ({one.stat})",
                           "points": [[round(t, 3), float(v)] for t, v in points]})
        out.append({"id": chart.id, "title": chart.title, "unit": chart.unit, "target": chart.target,
                    "series": series})
    return out


__all__ = ["Chart", "Series", "charts", "queries", "plotted", "series_id"]
