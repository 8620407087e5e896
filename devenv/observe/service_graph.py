"""X-Ray's service graph, pure: what GetServiceGraph (and GetTraceGraph) answer, computed from
the segment documents the X-Ray API holds (``infra/moto_patches.py`` serves it from moto's).

As X-Ray builds it: a node per service that sent segments (its ``name`` and ``origin``, e.g.
``AWS::ECS::Container``, as Type; ``active``), a ``client`` node in front of each service
whose segments no other service's subsegment called, and a node inferred per downstream call
the service made and nobody traced further: its ``aws`` subsegments as ``AWS::<name>``, SQL
as ``Database::SQL``, other ``remote`` ones (HTTP, Redis) as ``remote`` (``unknown``). A
subsegment whose call reached another traced service is an edge to that service. Every node
and edge carries its summary statistics (ok, error, throttle, fault counts, total response
time) and histograms of its durations in seconds; ReferenceIds number the nodes in order.
A service without ``origin`` has no Type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

CLIENT = "client"


@dataclass
class _Calls:
    """Durations and outcomes of the calls into a node or along an edge."""

    first: float = float("inf")
    last: float = float("-inf")
    ok: int = 0
    errors: int = 0
    throttles: int = 0
    faults: int = 0
    durations: dict[float, int] = field(default_factory=dict)

    def add(self, node: dict[str, Any]) -> None:
        start = float(node["start_time"])
        end = float(node.get("end_time", start))
        self.first, self.last = min(self.first, start), max(self.last, end)
        if node.get("fault"):
            self.faults += 1
        elif node.get("throttle"):
            self.throttles += 1
        elif node.get("error"):
            self.errors += 1
        else:
            self.ok += 1
        took = round(max(0.0, end - start), 3)
        self.durations[took] = self.durations.get(took, 0) + 1

    def statistics(self) -> dict[str, Any]:
        total = self.ok + self.errors + self.throttles + self.faults
        return {"OkCount": self.ok,
                "ErrorStatistics": {"ThrottleCount": self.throttles, "OtherCount": self.errors,
                                    "TotalCount": self.errors + self.throttles},
                "FaultStatistics": {"OtherCount": self.faults, "TotalCount": self.faults},
                "TotalCount": total,
                "TotalResponseTime": round(sum(d * n for d, n in self.durations.items()), 6)}

    def histogram(self) -> list[dict[str, Any]]:
        return [{"Value": value, "Count": count} for value, count in sorted(self.durations.items())]


@dataclass
class _Node:
    name: str
    type: str | None
    state: str
    calls: _Calls = field(default_factory=_Calls)
    edges: dict[tuple[str, str | None], _Calls] = field(default_factory=dict)
    root: bool = False


def _finished(documents: Iterable[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    """The last completed document of each id that overlaps [start, end]."""
    kept: dict[str, dict[str, Any]] = {}
    for document in documents:
        try:
            began = float(document["start_time"])
            ended = float(document.get("end_time", began))
        except (KeyError, TypeError, ValueError):
            continue
        if document.get("in_progress") or not document.get("id") or ended < start or began > end:
            continue
        kept[str(document["id"])] = document
    return list(kept.values())


def _subsegments(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for child in node.get("subsegments") or ():
        if isinstance(child, dict) and "start_time" in child and not child.get("in_progress"):
            yield child
            yield from _subsegments(child)


def _downstream(sub: dict[str, Any]) -> tuple[str, str] | None:
    """The node an untraced downstream call is inferred as, or None for local work."""
    namespace = sub.get("namespace")
    name = str(sub.get("name") or "unknown")
    if namespace == "aws":
        return name, f"AWS::{name}"
    if namespace == "remote":
        return name, "Database::SQL" if sub.get("sql") else "remote"
    return None


def service_graph(documents: Iterable[dict[str, Any]], start: float = float("-inf"),
                  end: float = float("inf")) -> list[dict[str, Any]]:
    """GetServiceGraph's ``Services`` for the segment documents between ``start`` and ``end``
    (seconds since the epoch)."""
    found = _finished(documents, start, end)
    segments = [d for d in found if d.get("type") != "subsegment"]
    loose = [d for d in found if d.get("type") == "subsegment"]
    nodes: dict[tuple[str, str | None], _Node] = {}
    owner: dict[str, tuple[str, str | None]] = {}  # (sub)segment id -> its service's node

    def node(key: tuple[str, str | None], state: str) -> _Node:
        if key not in nodes:
            nodes[key] = _Node(key[0], key[1], state)
        return nodes[key]

    for segment in segments:
        key = (str(segment.get("name") or "unknown"), segment.get("origin"))
        node(key, "active").calls.add(segment)
        for one in (segment, *_subsegments(segment)):
            owner[str(one.get("id"))] = key
    for sub in loose:  # a subsegment the SDK streamed on its own: its segment's service owns it
        parent = owner.get(str(sub.get("parent_id")))
        if parent is not None:
            for one in (sub, *_subsegments(sub)):
                owner[str(one.get("id"))] = parent
    traced = {str(s["parent_id"]) for s in segments if s.get("parent_id")}  # calls another service traced
    for document in (*segments, *loose):
        caller = owner.get(str(document.get("id")))
        if caller is None:
            continue
        own = [document] if document.get("type") == "subsegment" else []
        for sub in (*own, *_subsegments(document)):
            inferred = None if str(sub.get("id")) in traced else _downstream(sub)
            if inferred is not None:
                node(inferred, "unknown").calls.add(sub)
                nodes[caller].edges.setdefault(inferred, _Calls()).add(sub)
    for segment in segments:
        key = owner[str(segment["id"])]
        caller = owner.get(str(segment.get("parent_id")))
        if caller is None:  # called by no traced service: a client's request
            nodes[key].root = True
            caller = (key[0], CLIENT)
            node(caller, "unknown").calls.add(segment)
        nodes[caller].edges.setdefault(key, _Calls()).add(segment)

    order = sorted(nodes, key=lambda k: (k[1] != CLIENT, k[0], k[1] or ""))
    ids = {key: i for i, key in enumerate(order)}
    services = []
    for key in order:
        one = nodes[key]
        service: dict[str, Any] = {"ReferenceId": ids[key], "Name": one.name, "Names": [one.name]}
        if one.root:
            service["Root"] = True
        if one.type is not None:
            service["Type"] = one.type
        service.update(State=one.state, StartTime=one.calls.first, EndTime=one.calls.last, Edges=[
            {"ReferenceId": ids[callee], "StartTime": edge.first, "EndTime": edge.last,
             "SummaryStatistics": edge.statistics(), "ResponseTimeHistogram": edge.histogram(), "Aliases": []}
            for callee, edge in sorted(one.edges.items(), key=lambda item: ids[item[0]])])
        if one.type != CLIENT:
            service.update(SummaryStatistics=one.calls.statistics(), DurationHistogram=one.calls.histogram(),
                           ResponseTimeHistogram=one.calls.histogram())
        services.append(service)
    return services


__all__ = ["service_graph"]
