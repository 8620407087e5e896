"""The architecture a stack declares, explained from its config: pure, config in, steps out.

Each part of the stack gets one step (skipped when the config has none of it) with a fact
per route, function, service, rule, queue or store; `hop_sentence` explains one hop of a
request the same way, for the trip.
"""

from __future__ import annotations

import json

from ..config.model import StackConfig
from ..observe.graph import Graph, architecture
from .step import Step

_KINDS = {"fn": "function", "svc": "service", "bus": "bus", "queue": "queue"}


def hop_label(node: str) -> str:
    """'fn:api' -> 'function api', 'api' -> 'API Gateway', 'alb' -> 'ALB'."""
    if node == "api":
        return "API Gateway"
    if node == "alb":
        return "ALB"
    kind, _, name = node.partition(":")
    return f"{_KINDS.get(kind, kind)} {name}"


def node_of_hop(at: str) -> str:
    """A tour step's `at` ('function api', 'service x', 'api', 'alb') as a graph node id."""
    kind, _, name = at.partition(" ")
    prefix = {"function": "fn", "service": "svc", "bus": "bus", "queue": "queue"}.get(kind)
    return f"{prefix}:{name}" if prefix else kind


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _sources(graph: Graph, node: str) -> list[str]:
    return [f"{hop_label(e.source)} ({e.why})" for e in graph.edges if e.target == node and e.source != "api"]


def _targets(graph: Graph, node: str) -> list[str]:
    return [hop_label(e.target) for e in graph.edges if e.source == node]


def _calls(graph: Graph, node: str) -> str | None:
    """'calls ALB, publishes to bus x' from a function's or service's outgoing edges."""
    named = [("publishes to " if e.target.startswith("bus:") else "calls ") + hop_label(e.target)
             for e in graph.edges if e.source == node and not e.target.startswith("queue:")]
    return ", ".join(named) or None


def _routes(config: StackConfig, function: str) -> str | None:
    routes = [f"{r.method} {r.path}" for r in (config.api.routes if config.api else []) if r.function == function]
    if not routes:
        return None
    return "API " + (", ".join(routes) if len(routes) <= 2 else f"({len(routes)} routes)")


def _pattern(pattern: dict) -> str:
    return ", ".join(f"{key} {json.dumps(value) if isinstance(value, dict) else ' | '.join(map(str, value))}"
                     for key, value in pattern.items())


def function_fact(config: StackConfig, graph: Graph, name: str) -> str:
    f = config.functions[name]
    parts = [f"{f.handler} on {f.runtime}, {f.memory} MB, timeout {_seconds(f.timeout)}"]
    sources = [s for s in (_routes(config, name), *_sources(graph, f"fn:{name}")) if s]
    if sources:
        parts.append("invoked by " + "; ".join(sources))
    if calls := _calls(graph, f"fn:{name}"):
        parts.append(calls)
    if failed := [t for t in _targets(graph, f"fn:{name}") if t.startswith("queue ")]:
        parts.append("async failures to " + ", ".join(failed))
    return "; ".join(parts)


def service_fact(config: StackConfig, graph: Graph, name: str) -> str:
    s = config.services[name]
    count = f"{s.desired_count} task{'s' * (s.desired_count != 1)}"
    if s.autoscaling:
        count += f" ({s.autoscaling.min}-{s.autoscaling.max} at {s.autoscaling.target_cpu:g}% CPU)"
    parts = [f"{count} of {s.cpu / 1024:g} vCPU, {s.memory} MB, on port {s.container_port}"]
    if s.load_balancer:
        lb = s.load_balancer
        parts.append(f"ALB {', '.join(lb.paths + lb.hosts)} (priority {lb.priority}), "
                     f"target health {lb.health_check.path}")
    else:
        parts.append("not behind the ALB")
    if calls := _calls(graph, f"svc:{name}"):
        parts.append(calls)
    return "; ".join(parts)


def queue_fact(config: StackConfig, graph: Graph, name: str) -> str:
    q = config.queues[name]
    parts = []
    if fed := _sources(graph, f"queue:{name}"):
        parts.append("fed by " + "; ".join(fed))
    if consumers := [t for t in _targets(graph, f"queue:{name}") if t.startswith("function ")]:
        parts.append("feeds " + ", ".join(consumers))
    parts.append(f"visibility {_seconds(q.visibility_timeout)}")
    if q.dlq:
        parts.append(f"to {q.dlq} after {q.max_receive_count} receives")
    return "; ".join(parts)


def rule_fact(config: StackConfig, bus: str, rule: str) -> str:
    r = config.event_buses[bus].rules[rule]
    targets = ", ".join(f"queue {t.queue}" if t.queue else f"function {t.function}" for t in r.targets)
    return f"{_pattern(r.pattern)} -> {targets}" + ("" if r.enabled else " (disabled)")


def overview(config: StackConfig) -> list[Step]:
    """One step per part of the stack the config declares, in the order a request meets them."""
    graph = architecture(config)
    steps: list[Step] = []
    if config.api is not None:
        steps.append(Step(
            f"The API: {config.api.name}",
            f"API Gateway (REST, stage {config.api.stage}) matches a request's method and path to a route and "
            "hands it to the route's Lambda function as a proxy event (payload format 1.0).",
            [(f"{r.method} {r.path}", f"function {r.function}") for r in config.api.routes]
            or [("routes", "none yet (api.routes)")]))
    if config.functions:
        steps.append(Step(
            "Lambda functions",
            "Each function runs on devenv's Lambda runtime: warm instances of the official runtime client, "
            "with the function's memory, timeout and concurrency as on AWS.",
            [(name, function_fact(config, graph, name)) for name in config.functions]))
    if config.services:
        alb = (f"The internal ALB ({config.load_balancer.hostname}) routes by path or host to the "
               "healthy tasks of a service, round robin. " if config.load_balancer else "")
        steps.append(Step(
            "ECS services" + (" behind the internal ALB" if config.load_balancer else ""),
            alb + "Each service runs its desired count of tasks, replaces unhealthy ones and rolls out "
            "new revisions as ECS does.",
            [(name, service_fact(config, graph, name)) for name in config.services]))
    if any(bus.rules for bus in config.event_buses.values()):
        steps.append(Step(
            "EventBridge rules",
            "Code publishes events on a bus (PutEvents); each rule whose pattern matches an event sends it "
            "to the rule's targets.",
            [(f"{bus}: {rule}", rule_fact(config, bus, rule))
             for bus, b in config.event_buses.items() for rule in b.rules]))
    if config.queues:
        steps.append(Step(
            "SQS queues",
            "An event source mapping long-polls a queue and invokes its function with batches; a message "
            "received too often without being deleted moves to the queue's dead-letter queue.",
            [(name, queue_fact(config, graph, name)) for name in config.queues]))
    stores = []
    if config.infra.postgres:
        stores.append(("PostgreSQL", f"database {config.infra.postgres.database} (Aurora on AWS)"))
    if config.infra.redis:
        stores.append(("Redis", "a real server (ElastiCache on AWS)"))
    stores += [(f"bucket {name}", "S3, served by the emulator") for name in config.buckets]
    if stores:
        steps.append(Step("Storage", "Real servers where AWS has managed ones; the emulator for S3.", stores))
    return steps


def how_to_add_a_request(config: StackConfig) -> Step:
    """What to write in devenv.yaml so that the tour also follows a request, from the first route."""
    route = config.api.routes[0] if config.api and config.api.routes else None
    method, path = (route.method if route.method != "ANY" else "GET", route.path) if route else ("GET", "/")
    path = "/".join("example" if p.startswith("{") else p for p in path.split("/")) or "/"
    lines = ["tour:", "  request:", f"    method: {method}", f"    path: {path}"]
    if method in ("POST", "PUT", "PATCH"):
        lines.append("    body: {}")
    if route:
        lines += ["  steps:", f"    - at: function {route.function}", "      say: What this function does."]
    return Step("Follow a request",
                "Add a `tour:` section to devenv.yaml and the tour will send that request and walk its trace "
                "hop by hop (see docs/config.md, tour):",
                [("", line) for line in lines])


__all__ = ["overview", "how_to_add_a_request", "hop_label", "node_of_hop", "function_fact", "service_fact",
           "queue_fact", "rule_fact"]
