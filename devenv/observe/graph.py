"""The architecture as a graph, built from the config, and the traffic on its edges, counted
from spans: what the web dashboard draws.

Nodes are the API, functions, the internal ALB, services, buses and queues (DLQs apart);
edges are what the config wires together (routes, ALB rules, rule targets, event sources,
redrive policies, a function or service that names the ALB or a bus). Traffic follows the
spans: each span whose parent is in the same trace is one crossing from the node its parent
stands for to its own node, counted on that edge (and added as an observed edge when the
config did not predict it). Pure: config and spans in, data out.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ..config.model import StackConfig
from .spans import Span

LAYERS = {"api": 0, "function": 1, "alb": 2, "service": 3, "bus": 4, "queue": 5, "dlq": 6}


@dataclass(frozen=True)
class Node:
    id: str  # "api", "fn:<name>", "alb", "svc:<name>", "bus:<name>", "queue:<name>"
    kind: str  # a key of LAYERS
    label: str
    layer: int
    row: int


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    why: str  # what in the config makes it


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)


def architecture(config: StackConfig) -> Graph:
    dlqs = {q.dlq for q in config.queues.values() if q.dlq}
    dlqs |= {f.dead_letter_queue for f in config.functions.values() if f.dead_letter_queue}
    dlqs |= {t.dead_letter_queue for b in config.event_buses.values() for r in b.rules.values() for t in r.targets
             if t.dead_letter_queue}
    kinds: dict[str, tuple[str, str]] = {}
    if config.api is not None:
        kinds["api"] = ("api", f"API {config.api.name}")
    for name in config.functions:
        kinds[f"fn:{name}"] = ("function", name)
    has_alb = config.load_balancer is not None or any(s.load_balancer for s in config.services.values())
    if has_alb:
        kinds["alb"] = ("alb", "internal ALB")
    for name in config.services:
        kinds[f"svc:{name}"] = ("service", name)
    for name in config.event_buses:
        kinds[f"bus:{name}"] = ("bus", name)
    for name in config.queues:
        kinds[f"queue:{name}"] = ("dlq" if name in dlqs else "queue", name)

    edges: list[Edge] = []

    def add(source: str, target: str, why: str) -> None:
        if source in kinds and target in kinds and not any(e.source == source and e.target == target for e in edges):
            edges.append(Edge(source, target, why))

    for route in (config.api.routes if config.api else []):
        add("api", f"fn:{route.function}", f"{route.method} {route.path}")
    buses = set(config.event_buses)
    for name, function in config.functions.items():
        if has_alb and _names_alb(function.secrets, function.environment, config):
            add(f"fn:{name}", "alb", "ALB url")
        for bus in _named_buses(function.environment, buses):
            add(f"fn:{name}", f"bus:{bus}", "publishes")
        for source in function.events:
            add(f"queue:{source.sqs.queue}", f"fn:{name}", "event source")
        for failed in (function.dead_letter_queue, function.on_failure.queue if function.on_failure else None):
            if failed:
                add(f"fn:{name}", f"queue:{failed}", "async failures")
    for name, service in config.services.items():
        if service.load_balancer is not None:
            add("alb", f"svc:{name}", ", ".join(service.load_balancer.paths or service.load_balancer.hosts))
        if has_alb and _names_alb(service.secrets, service.environment, config):
            add(f"svc:{name}", "alb", "ALB url")
        for bus in _named_buses(service.environment, buses):
            add(f"svc:{name}", f"bus:{bus}", "publishes")
    for bus_name, bus in config.event_buses.items():
        for rule_name, rule in bus.rules.items():
            for target in rule.targets:
                if target.queue:
                    add(f"bus:{bus_name}", f"queue:{target.queue}", rule_name)
                if target.function:
                    add(f"bus:{bus_name}", f"fn:{target.function}", rule_name)
    for name, queue in config.queues.items():
        if queue.dlq:
            add(f"queue:{name}", f"queue:{queue.dlq}", f"after {queue.max_receive_count} receives")

    rows: dict[int, int] = {}
    nodes = []
    for node_id, (kind, label) in kinds.items():
        layer = LAYERS[kind]
        nodes.append(Node(node_id, kind, label, layer, rows.get(layer, 0)))
        rows[layer] = rows.get(layer, 0) + 1
    return Graph(tuple(nodes), tuple(edges))


def _names_alb(secrets: Mapping[str, str], environment: Mapping[str, str], config: StackConfig) -> bool:
    hostname = config.load_balancer.hostname if config.load_balancer else None
    return any(str(ref).startswith("alb.") for ref in secrets.values()) or bool(
        hostname and any(hostname in value for value in environment.values()))


def _named_buses(environment: Mapping[str, str], buses: set[str]) -> list[str]:
    return sorted({value for value in environment.values() if value in buses})


# ---------------------------------------------------------------- traffic


@dataclass
class Traffic:
    count: int = 0
    errors: int = 0


@dataclass(frozen=True)
class Crossings:
    """Traffic per edge (source, target), and edges seen in spans that the config lacks."""

    edges: dict[tuple[str, str], Traffic] = field(default_factory=dict)
    unexpected: tuple[tuple[str, str], ...] = ()


_OPERATION_NAME = re.compile(r"^(?:invoke|PutEvents|SendMessage|queue)\s+(\S+)")


def _attr(span: Span, key: str) -> str | None:
    value = span.attributes.get(key)
    return str(value) if value not in (None, "") else None


def _from_operation(span: Span) -> str | None:
    match = _OPERATION_NAME.match(span.operation)
    return match.group(1) if match else None


class SpanMapper:
    """Which node of the graph a span stands for (its entry) and where its work happens (exit)."""

    def __init__(self, config: StackConfig):
        self._routes = [(f"svc:{name}", pattern) for name, s in config.services.items() if s.load_balancer
                        for pattern in s.load_balancer.paths]

    def entry(self, span: Span) -> str | None:
        c = span.component
        if c == "apigateway":
            return "api"
        if c == "lambda":
            name = _attr(span, "function") or _from_operation(span)
            return f"fn:{name}" if name else None
        if c == "alb":
            return "alb"
        if c == "ecs":
            name = _attr(span, "service")
            return f"svc:{name}" if name else None
        if c == "eventbridge":
            name = _attr(span, "bus") or _from_operation(span)
            return f"bus:{name}" if name else None
        if c in ("sqs", "event-source"):
            name = _attr(span, "queue") or _from_operation(span)
            return f"queue:{name}" if name else None
        return None

    def exit(self, span: Span) -> str | None:
        """Where the work inside this span happens (an ALB span's work is in the service it chose)."""
        if span.component == "alb":
            return self.service_of(span) or "alb"
        if span.component == "event-source" and _attr(span, "function"):
            return f"fn:{_attr(span, 'function')}"
        return self.entry(span)

    def service_of(self, span: Span) -> str | None:
        if _attr(span, "service"):
            return f"svc:{_attr(span, 'service')}"
        path = _attr(span, "path")
        if path is None:
            return None
        for node, pattern in self._routes:
            if fnmatch.fnmatchcase(path, pattern):
                return node
        return None


def traffic(graph: Graph, config: StackConfig, spans: Iterable[Span]) -> Crossings:
    """Counts crossings per edge in ``spans`` (errors: crossings into a failed span)."""
    mapper = SpanMapper(config)
    spans = list(spans)
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    children: dict[tuple[str, str], list[Span]] = {}
    for span in spans:
        if span.parent_id:
            children.setdefault((span.trace_id, span.parent_id), []).append(span)
    counted: dict[tuple[str, str], Traffic] = {}

    def cross(source: str | None, target: str | None, failed: bool) -> None:
        if source is None or target is None or source == target:
            return
        found = counted.setdefault((source, target), Traffic())
        found.count += 1
        found.errors += int(failed)

    for span in spans:
        entry = mapper.entry(span)
        parent = by_id.get((span.trace_id, span.parent_id)) if span.parent_id else None
        if parent is not None:
            cross(mapper.exit(parent), entry, span.failed)
        if span.component == "alb":
            cross("alb", mapper.service_of(span), span.failed)
        if span.component == "event-source":  # the poller's batch is the queue -> function crossing
            cross(entry, mapper.exit(span), span.failed)
        if span.component == "sqs" and _attr(span, "dead_letter_queue"):
            cross(entry, f"queue:{_attr(span, 'dead_letter_queue')}", False)
        if span.component == "eventbridge" and entry:
            delivered = {mapper.entry(c) for c in children.get((span.trace_id, span.span_id), [])}
            for target in span.attributes.get("targets") or []:
                if f"queue:{target}" not in delivered:
                    cross(entry, f"queue:{target}", span.failed)
    known = {(e.source, e.target) for e in graph.edges}
    nodes = {n.id for n in graph.nodes}
    unexpected = tuple(sorted(k for k in counted if k not in known and k[0] in nodes and k[1] in nodes))
    return Crossings({k: v for k, v in counted.items() if k in known or k in unexpected}, unexpected)


def graph_json(graph: Graph, crossings: Crossings) -> dict:
    edges = [{"source": e.source, "target": e.target, "why": e.why, "observed": False} for e in graph.edges]
    edges += [{"source": s, "target": t, "why": "seen in traces", "observed": True} for s, t in crossings.unexpected]
    for edge in edges:
        found = crossings.edges.get((edge["source"], edge["target"]), Traffic())
        edge.update(count=found.count, errors=found.errors)
    return {"nodes": [{"id": n.id, "kind": n.kind, "label": n.label, "layer": n.layer, "row": n.row}
                      for n in graph.nodes], "edges": edges}


__all__ = ["Graph", "Node", "Edge", "Traffic", "Crossings", "architecture", "traffic", "graph_json", "LAYERS",
           "SpanMapper"]
