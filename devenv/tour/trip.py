"""One request's trip, hop by hop, from its spans: pure, config and spans in, steps out.

Spans are grouped into hops a newcomer can follow: a hop starts where a request enters a
part of the stack (API Gateway, the ALB, a bus, a queue, or a function invoked directly) and
takes in the spans that continue it there (the function API Gateway invokes, the task the
ALB chose, the batch and function a queue feeds). Each hop is explained from the config;
the sentences of the stack's `tour.steps` go to the first hop that reaches their `at`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import StackConfig, TourConfig
from ..observe.graph import SpanMapper
from ..observe.spans import Span, WaterfallRow
from .architecture import hop_label, node_of_hop
from .step import Step

# Spans that carry on their parent's hop rather than start one.
_CONTINUES = {"apigateway": {"lambda"}, "alb": {"ecs"}, "sqs": {"event-source", "lambda"},
              "event-source": {"lambda"}, "eventbridge": {"lambda"}}


@dataclass(frozen=True)
class Hop:
    spans: tuple[Span, ...]
    nodes: tuple[str, ...]  # the graph nodes it passes, in order


def hops(config: StackConfig, spans: list[Span]) -> list[Hop]:
    """The trace's hops in the order they began."""
    mapper = SpanMapper(config)
    ordered = sorted(spans, key=lambda s: (s.start, s.span_id))
    by_id = {s.span_id: s for s in ordered}
    groups: list[list[Span]] = []
    group_of: dict[str, int] = {}
    for span in ordered:
        parent = by_id.get(span.parent_id or "")
        if parent is not None and parent.span_id in group_of and span.component in _CONTINUES.get(
                parent.component, ()):
            index = group_of[parent.span_id]
            groups[index].append(span)
        else:
            index = len(groups)
            groups.append([span])
        group_of[span.span_id] = index
    found = []
    for group in groups:
        nodes: list[str] = []
        for span in group:
            for node in (mapper.entry(span), mapper.exit(span)):
                if node and node not in nodes:
                    nodes.append(node)
            if span.component == "eventbridge":
                nodes += [f"queue:{t}" for t in span.attributes.get("targets") or [] if f"queue:{t}" not in nodes]
        found.append(Hop(tuple(group), tuple(nodes)))
    return found


def matched(tour: TourConfig, found: list[Hop]) -> dict[int, int]:
    """Which hop each of the tour's steps lands on (step index -> hop index): the first hop not
    yet taken that passes the step's `at`. Steps the trace has not reached are missing."""
    taken: dict[int, int] = {}
    for index, step in enumerate(tour.steps):
        node = node_of_hop(step.at)
        for at, hop in enumerate(found):
            if at not in taken.values() and node in hop.nodes:
                taken[index] = at
                break
    return taken


def complete(tour: TourConfig, found: list[Hop]) -> bool:
    """Whether the trace has reached every hop the tour names."""
    return len(matched(tour, found)) == len(tour.steps)


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _count(size: object) -> str:
    return f"{size} message{'' if size == 1 else 's'}"


def _failed(span: Span) -> str:
    return f"  FAILED ({span.attributes.get('error') or span.outcome})" if span.failed else ""


def span_fact(span: Span) -> tuple[str, str]:
    """What one span shows a newcomer, as (label, value)."""
    a = span.attributes
    if span.component == "apigateway":
        fact = ("route", f"{span.operation} -> {a.get('status', '?')} in {_ms(span.duration_ms)}")
    elif span.component == "lambda":
        fact = (f"function {a.get('function', '?')}",
                f"{'cold start' if a.get('cold') else 'warm instance'}, {_ms(span.duration_ms)}")
    elif span.component == "alb":
        fact = ("ALB", f"{span.operation} -> {a.get('service', 'no service')}, {a.get('status', '?')}")
    elif span.component == "ecs":
        fact = ("task", f"{str(a.get('task', '?'))[:8]} at {a.get('address', '?')} answered {a.get('status', '?')} "
                        f"in {_ms(span.duration_ms)}")
    elif span.component == "eventbridge":
        targets = ", ".join(a.get("targets") or []) or "no rule matched"
        fact = ("event", f"{a.get('detail_type', '?')} from {a.get('source', '?')} -> {targets}")
    elif span.component == "sqs" and a.get("dead_letter_queue"):
        fact = ("dead-letter", f"{a.get('queue', '?')} -> {a['dead_letter_queue']}")
    elif span.component == "sqs":
        fact = ("in queue", f"{a.get('queue', '?')} for {_ms(span.duration_ms)} (receive {a.get('receive_count', 1)})")
    elif span.component == "event-source":
        fact = ("batch", f"{_count(a.get('batch_size'))} -> {a.get('function', '?')}: "
                         f"{a.get('verdict', span.outcome)}")
    else:
        fact = (span.component, f"{span.operation}, {_ms(span.duration_ms)}")
    return fact[0], fact[1] + _failed(span)


def explain(config: StackConfig, hop: Hop) -> str:
    """How devenv wires this hop, in a sentence or two from the config (the architecture part of
    the tour has the details of each function and service)."""
    first = hop.spans[0]
    a = first.attributes
    if first.component == "apigateway":
        return (f"API Gateway matches the route {a.get('method', '')} {a.get('resource') or first.operation} and "
                f"hands the request to function {a.get('function', '?')} as a proxy event (payload format 1.0).")
    if first.component == "alb":
        name = next((n.partition(":")[2] for n in hop.nodes if n.startswith("svc:")), "")
        service = config.services.get(name)
        if service is None or service.load_balancer is None:
            return "The internal ALB matched no service's rule."
        lb = service.load_balancer
        return (f"The internal ALB matches {', '.join(lb.paths + lb.hosts)} (rule priority {lb.priority}) and "
                f"forwards to one of {name}'s healthy tasks, round robin.")
    if first.component == "eventbridge":
        bus = str(a.get("bus") or "")
        targets = set(a.get("targets") or [])
        rules = config.event_buses[bus].rules if bus in config.event_buses else {}
        matching = [f"rule {r} sends it to " + ", ".join(
            f"queue {t.queue}" if t.queue else f"function {t.function}" for t in rule.targets)
            for r, rule in rules.items() if any(t.queue in targets or t.function in targets for t in rule.targets)]
        return (f"Code publishes {a.get('detail_type') or 'an event'} on bus {bus}; "
                + ("; ".join(matching) if matching else "no rule matches it") + ".")
    if first.component == "sqs":
        return _queue_sentence(config, str(a.get("queue") or ""))
    if first.component == "lambda":
        return f"Function {a.get('function', '?')} is invoked directly ({a.get('type', 'RequestResponse')})."
    return f"{first.component}: {first.operation}"


def _queue_sentence(config: StackConfig, queue: str) -> str:
    consumers = [(name, source.sqs) for name, f in config.functions.items() for source in f.events
                 if source.sqs.queue == queue]
    text = f"The message waits in queue {queue}"
    if not consumers:
        return text + " (no function reads it)."
    name, sqs = consumers[0]
    text += (f" until an event source mapping receives it and invokes function {name} with a batch "
             f"(up to {sqs.batch_size} messages")
    text += ", failed ones reported one by one)" if sqs.report_batch_item_failures else ")"
    q = config.queues.get(queue)
    if q is not None and q.dlq:
        text += f"; a message received {q.max_receive_count} times without success goes to {q.dlq}"
    return text + "."


def trip(config: StackConfig, tour: TourConfig, spans: list[Span]) -> list[Step]:
    """The trace's hops as steps, then a step per tour step the trace never reached."""
    found = hops(config, spans)
    taken = matched(tour, found)
    says = {hop: tour.steps[step].say for step, hop in taken.items()}
    steps = [Step(" -> ".join(hop_label(n) for n in hop.nodes) or hop.spans[0].component, explain(config, hop),
                  [span_fact(s) for s in hop.spans], says.get(index))
             for index, hop in enumerate(found)]
    for index, step in enumerate(tour.steps):
        if index not in taken:
            steps.append(Step(f"{step.at} (not reached)", "The request's trace never reached this hop in time: "
                              "`devenv logs` and `devenv trace` show where it stopped.", [], step.say))
    return steps


def whole_trip(root: str, rows: list[WaterfallRow]) -> Step:
    """Every hop as devenv recorded it, indented by parent."""
    facts = [(f"{' ' * min(r.depth, 8)}{r.span.component}",
              f"{r.span.operation}  +{r.offset_ms:.0f} ms, {_ms(r.span.duration_ms)}" + _failed(r.span))
             for r in rows]
    return Step("The whole trip, hop by hop",
                f"devenv recorded a span at every hop of trace {root}, linked by the trace header each hop "
                "passes on (X-Amzn-Trace-Id, Lambda-Runtime-Trace-Id, EventBridge TraceHeader, SQS "
                f"AWSTraceHeader). `devenv trace {root}` draws it as a waterfall; `devenv dashboard --web` "
                "shows it on the architecture.", facts or [("spans", "none recorded yet")])


__all__ = ["Hop", "hops", "matched", "complete", "span_fact", "explain", "trip", "whole_trip"]
