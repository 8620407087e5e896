"""The web dashboard's charts, pure: which CloudWatch series a stack's config has, the
GetMetricData queries that read them, and the plotted form of the answer.

The charts read the same series the stack publishes into the emulator's CloudWatch
(``aws/metrics.py``: the ECS scheduler, the Lambda runtime, the queue sampler), so what a
chart shows is what `aws cloudwatch get-metric-statistics` returns and what target
tracking acted on: per service its CPU against the autoscaling target and its running and
desired task counts; per function invocations, errors and duration; per queue its depth;
at the API (AWS/ApiGateway, by ApiName) and the ALB (AWS/ApplicationELB, by LoadBalancer)
the request rate with its errors and the latency's p50, p90 and p99; per dead-letter queue
the messages that arrived in it (the rise of its depth: SQS counts a message moved there by
a redrive policy in no NumberOfMessagesSent) and its depth.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..compute.alb.metrics import arn_dimension
from ..compute.ecs_aws.arns import Names
from ..config.model import StackConfig

PERCENTILES = ("p50", "p90", "p99")


class Shown(enum.Enum):
    """How a series' datapoints are plotted."""

    AS_IS = "as is"
    PER_SECOND = "per second"  # a Sum over the period, divided by the period
    RISE = "rise"  # how much it grew since the previous datapoint (never below 0)


@dataclass(frozen=True)
class Series:
    label: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    shown: Shown = Shown.AS_IS


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
    if config.api is not None and config.functions:  # published by the lambda process
        dims = (("ApiName", config.api.name),)
        found.append(Chart("api:requests", f"API {config.api.name} · requests", "per second", (
            Series("requests", "AWS/ApiGateway", "Count", dims, "Sum", Shown.PER_SECOND),
            Series("4XX", "AWS/ApiGateway", "4XXError", dims, "Sum", Shown.PER_SECOND),
            Series("5XX", "AWS/ApiGateway", "5XXError", dims, "Sum", Shown.PER_SECOND),
        )))
        found.append(Chart("api:latency", f"API {config.api.name} · latency", "ms", tuple(
            Series(p, "AWS/ApiGateway", "Latency", dims, p) for p in PERCENTILES)))
    if config.load_balancer is not None and config.services:  # published by the ecs process
        names = Names(region=config.region, cluster=config.name)
        dims = (("LoadBalancer", arn_dimension(names.load_balancer_arn)),)
        found.append(Chart("alb:requests", "ALB · requests", "per second", (
            Series("requests", "AWS/ApplicationELB", "RequestCount", dims, "Sum", Shown.PER_SECOND),
            Series("target 5XX", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dims, "Sum", Shown.PER_SECOND),
            Series("ALB 5XX", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", dims, "Sum", Shown.PER_SECOND),
        )))
        found.append(Chart("alb:latency", "ALB · target response time", "s", tuple(
            Series(p, "AWS/ApplicationELB", "TargetResponseTime", dims, p) for p in PERCENTILES)))
    for name in sorted({q.dlq for q in config.queues.values() if q.dlq is not None}):
        dims = (("QueueName", name),)
        found.append(Chart(f"dlq:{name}", f"DLQ {name} · arrivals", "messages", (
            Series("arrived", "AWS/SQS", "ApproximateNumberOfMessagesVisible", dims, "Maximum", Shown.RISE),
            Series("depth", "AWS/SQS", "ApproximateNumberOfMessagesVisible", dims, "Maximum"),
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


def shown(points: list[tuple[float, float]], how: Shown, period: int) -> list[tuple[float, float]]:
    """Time-ordered datapoints as ``how`` plots them; a rise needs a previous datapoint, so
    the first one has none."""
    if how is Shown.PER_SECOND:
        return [(t, v / period) for t, v in points]
    if how is Shown.RISE:
        return [(t, max(0.0, v - before)) for (_, before), (t, v) in zip(points, points[1:])]
    return points


def plotted(found: Iterable[Chart], results: Iterable[Mapping[str, Any]], period: int = 60) -> list[dict[str, Any]]:
    """The charts as the page draws them: per series its (epoch seconds, value) points in
    time order, from GetMetricData's MetricDataResults at ``period`` seconds."""
    by_id = {r["Id"]: r for r in results}
    out = []
    for c, chart in enumerate(found):
        series = []
        for s, one in enumerate(chart.series):
            result = by_id.get(series_id(c, s), {})
            points = sorted(zip((_epoch(t) for t in result.get("Timestamps", ())),
                                (float(v) for v in result.get("Values", ()))))
            described = f"{one.namespace} {one.metric} ({one.stat})"
            if one.shown is not Shown.AS_IS:
                described += f", {one.shown.value}"
            series.append({"label": one.label, "metric": described,
                           "points": [[round(t, 3), v] for t, v in shown(points, one.shown, period)]})
        out.append({"id": chart.id, "title": chart.title, "unit": chart.unit, "target": chart.target,
                    "series": series})
    return out


__all__ = ["Chart", "Series", "Shown", "charts", "queries", "plotted", "series_id", "shown"]
