"""What the dashboards show, gathered in one snapshot: components, services, queues, recent
traces and the traffic on the architecture's edges.

The terminal dashboard (cli.py renders it with rich) and the web page (webapp.py serves it
as JSON) draw the same ``Snapshot``; the web page also charts CloudWatch's series
(``chart_data``, from ``charts.py``). Its sources are behind the ``DashboardSources``
protocol; ``LiveSources`` reads a stack (its record, ECS control API, emulator and span
store) and turns each source's failure into a note instead of failing the whole view: a
dashboard of a stack that is starting or half down still shows what it can.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config.model import StackConfig
from .charts import charts as chart_specs
from .charts import plotted
from .charts import queries as chart_queries
from .graph import architecture, graph_json, traffic
from .queues import QueueDepth
from .span_index import SpanIndex
from .spans import Span, TraceSummary, find_trace, recent_traces
from .trace_view import summary_json, trace_json

MAX_QUERIES = 500  # GetMetricData's limit of queries per call


@dataclass(frozen=True)
class ComponentView:
    name: str
    state: str
    address: str
    restarts: int
    note: str = ""


@dataclass(frozen=True)
class ServiceView:
    name: str
    desired: int
    running: int
    healthy: int
    rollout: str = ""
    capacity: str = ""  # its tasks per capacity provider: "FARGATE_SPOT 4, FARGATE 1"


def capacity_line(counts: dict[str, int]) -> str:
    """A service's tasks per capacity provider, most first."""
    return ", ".join(f"{provider} {n}" for provider, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def blue_green_state(blue_green: dict | None) -> str:
    """A CODE_DEPLOY service's last deployment in a few words: its id, status, lifecycle event
    and the share of production traffic on green; empty when it has none."""
    deployment = (blue_green or {}).get("deployment")
    if not deployment:
        return ""
    event = f" {deployment['lifecycleEvent']}" if deployment.get("lifecycleEvent") else ""
    rolled = ", rolled back" if deployment.get("rolledBack") else ""
    return (f"CodeDeploy {deployment['id']} {deployment['status']}{event}: green {deployment['greenPercent']}%"
            f"{rolled}")


@dataclass(frozen=True)
class Snapshot:
    stack: str
    running: bool
    phase: str | None
    components: tuple[ComponentView, ...] = ()
    services: tuple[ServiceView, ...] = ()
    queues: tuple[QueueDepth, ...] = ()
    traces: tuple[TraceSummary, ...] = ()
    graph: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    taken_at: float = 0.0
    window: float = 0.0  # seconds of spans counted on the graph's edges

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "running": self.running, "phase": self.phase, "taken_at": self.taken_at,
                "window": self.window, "notes": list(self.notes),
                "components": [vars(c) for c in self.components], "services": [vars(s) for s in self.services],
                "queues": [{"name": q.name, "visible": q.visible, "in_flight": q.in_flight, "delayed": q.delayed,
                            "dlq": q.dlq, "dlq_depth": q.dlq_depth, "is_dlq": q.is_dlq, "sources": list(q.sources)}
                           for q in self.queues],
                "traces": [summary_json(t) for t in self.traces], "graph": self.graph}


class DashboardSources(Protocol):
    """Where a snapshot's parts come from; each method may raise (the part becomes a note)."""

    config: StackConfig

    def status(self) -> tuple[bool, Any]:
        """(running, the stack record or None)"""
        ...

    def services(self, record: Any) -> list[dict]: ...

    def queues(self) -> list[QueueDepth]: ...

    def spans(self) -> list[Span]: ...

    def metric_data(self, queries: list[dict], start: float, end: float) -> list[dict]:
        """GetMetricData's MetricDataResults for ``queries`` between the two epoch times."""
        ...


class LiveSources:
    """A stack's live sources. ``stack`` is a ``devenv.stack.Stack`` (used, not imported)."""

    def __init__(self, stack: Any):
        self._stack = stack
        self.config: StackConfig = stack.config
        self._index = SpanIndex(stack.state.traces)
        self._aws: Any = None
        self._aws_url: str | None = None

    def status(self) -> tuple[bool, Any]:
        view = self._stack.status()
        return view.running, view.record

    def services(self, record: Any) -> list[dict]:
        if not self.config.services or record is None or "ecs" not in record.ports:
            return []
        return self._stack.ecs(record).services()

    def _clients(self) -> Any:
        """The emulator's clients (short timeouts, one attempt), or None when it is not up."""
        from ..aws.endpoint import AwsClients, AwsEndpoint, ClientSettings

        running, record = self.status()
        if not running or record is None or "emulator" not in record.ports:
            return None
        url = self._stack.endpoint_url(record.ports)
        if self._aws is None or self._aws_url != url:
            self._aws = AwsClients(AwsEndpoint(url, self.config.region),
                                   ClientSettings(connect_timeout=1.0, read_timeout=3.0, max_attempts=1))
            self._aws_url = url
        return self._aws

    def queues(self) -> list[QueueDepth]:
        from .queues import read_depths

        aws = self._clients()
        return read_depths(aws.sqs) if aws is not None else []

    def metric_data(self, queries: list[dict], start: float, end: float) -> list[dict]:
        aws = self._clients()
        if aws is None:
            return []
        cloudwatch = aws.client("cloudwatch")
        results: list[dict] = []
        for first in range(0, len(queries), MAX_QUERIES):
            answer = cloudwatch.get_metric_data(MetricDataQueries=queries[first:first + MAX_QUERIES],
                                                StartTime=start, EndTime=end)
            results.extend(answer["MetricDataResults"])
        return results

    def spans(self) -> list[Span]:
        self._index.refresh()
        return self._index.spans


def snapshot(sources: DashboardSources, *, traces: int = 15, window: float = 300.0,
             now: float | None = None) -> Snapshot:
    """One view of everything; a source that fails leaves a note."""
    now = time.time() if now is None else now
    notes: list[str] = []
    running, record = False, None
    try:
        running, record = sources.status()
    except Exception as exc:
        notes.append(f"stack record: {exc}")
    components: list[ComponentView] = []
    if record is not None:
        for c in record.components:
            state = c.state.value if running else ("failed" if c.state.value == "failed" else "stopped")
            components.append(ComponentView(c.name, state, c.address, c.restarts,
                                            c.message or (f"last: {c.last_exit}" if c.last_exit else "")))
    if not running:
        notes.append("the stack is not running (`devenv up` starts it); traces are from earlier runs")
    services: list[ServiceView] = []
    queues: list[QueueDepth] = []
    if running:
        try:
            for s in sources.services(record):
                last = s["deployments"][-1] if s.get("deployments") else None
                rollout = blue_green_state(s.get("blueGreen")) or (last["rolloutState"] if last else "")
                services.append(ServiceView(s["serviceName"], s["desiredCount"], s["runningCount"],
                                            s["healthyCount"], rollout,
                                            capacity_line(s.get("capacityProviders") or {})))
        except Exception as exc:
            notes.append(f"services: {exc}")
        try:
            queues = sources.queues()
        except Exception as exc:
            notes.append(f"queues: {exc}")
    spans: list[Span] = []
    try:
        spans = sources.spans()
    except Exception as exc:
        notes.append(f"traces: {exc}")
    graph = architecture(sources.config)
    recent = [s for s in spans if s.start >= now - window]
    return Snapshot(sources.config.name, running, record.phase.value if record is not None else None,
                    tuple(components), tuple(services), tuple(queues), tuple(recent_traces(spans, traces)),
                    graph_json(graph, traffic(graph, sources.config, recent)), tuple(notes), now, window)


def chart_data(sources: DashboardSources, *, minutes: float = 15.0, now: float | None = None) -> dict[str, Any]:
    """The charts of the last ``minutes`` (``charts.py``), at the stack's metrics interval;
    a CloudWatch that cannot answer leaves empty charts and a note."""
    config = sources.config
    now = time.time() if now is None else now
    found = chart_specs(config)
    period = max(1, round(config.metrics.interval))
    start = (now - minutes * 60) // period * period
    view: dict[str, Any] = {"start": start, "end": now, "period": period, "note": ""}
    results: list[dict] = []
    if not config.metrics.enabled:
        view["note"] = "metrics are off in this stack's config (metrics: {enabled: false})"
    elif found:
        # Percentiles in calls of their own: a CloudWatch without them (LocalStack's fails the
        # whole GetMetricData) then leaves only the latency charts empty.
        queries = chart_queries(found, period)
        notes = []
        for part, what in (([q for q in queries if not _percentile(q)], "CloudWatch"),
                           ([q for q in queries if _percentile(q)], "CloudWatch percentiles")):
            if not part:
                continue
            try:
                results += sources.metric_data(part, start, now + period)
            except Exception as exc:
                notes.append(f"{what}: {exc}")
        view["note"] = "; ".join(notes)
    view["charts"] = plotted(found, results, period)
    return view


def _percentile(query: dict) -> bool:
    """Whether a GetMetricData query asks for a percentile (``p99``, ``p99.9``)."""
    stat = query["MetricStat"]["Stat"]
    return stat[:1] == "p" and stat[1:].replace(".", "", 1).isdigit()


def trace_detail(sources: DashboardSources, wanted: str) -> dict[str, Any] | None:
    found = find_trace(sources.spans(), wanted)
    return trace_json(*found) if found else None


__all__ = ["Snapshot", "ComponentView", "ServiceView", "DashboardSources", "LiveSources", "snapshot",
           "chart_data", "trace_detail"]
