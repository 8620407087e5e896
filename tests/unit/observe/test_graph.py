from __future__ import annotations

from pathlib import Path

import pytest

from devenv.config.loader import load_project
from devenv.observe.graph import architecture, graph_json, traffic

from .conftest import ROOT_A, ROOT_B, lifecycle, span


@pytest.fixture
def config(project: Path):
    return load_project(project / "devenv.yaml", environ={}, use_overlay=False).config


def test_the_graph_is_built_from_the_config(config):
    graph = architecture(config)
    kinds = {n.id: (n.kind, n.layer) for n in graph.nodes}
    assert kinds == {"api": ("api", 0), "fn:api": ("function", 1), "fn:worker": ("function", 1), "alb": ("alb", 2),
                     "svc:orders": ("service", 3), "bus:app-events": ("bus", 4), "queue:work": ("queue", 5),
                     "queue:work-dlq": ("dlq", 6)}
    assert {(e.source, e.target) for e in graph.edges} == {
        ("api", "fn:api"), ("fn:api", "alb"), ("fn:worker", "alb"), ("alb", "svc:orders"),
        ("svc:orders", "bus:app-events"), ("bus:app-events", "queue:work"), ("queue:work", "fn:worker"),
        ("queue:work", "queue:work-dlq")}
    assert [n.row for n in graph.nodes if n.kind == "function"] == [0, 1]


def test_traffic_counts_crossings_between_hops_and_failures(config):
    graph = architecture(config)
    spans = lifecycle(ROOT_A, 0.0) + lifecycle(ROOT_B, 10.0, fail_worker=True)
    spans.append(span(ROOT_B, "d" * 16, None, 11.0, 1.0, "sqs", "dead-letter work", queue="work",
                      dead_letter_queue="work-dlq", outcome="error"))
    crossings = traffic(graph, config, spans)
    counts = {k: (v.count, v.errors) for k, v in crossings.edges.items()}
    assert counts == {("api", "fn:api"): (2, 0), ("fn:api", "alb"): (2, 0), ("alb", "svc:orders"): (2, 0),
                      ("svc:orders", "bus:app-events"): (2, 0), ("bus:app-events", "queue:work"): (2, 0),
                      ("queue:work", "fn:worker"): (2, 0), ("queue:work", "queue:work-dlq"): (1, 0)}
    assert crossings.unexpected == ()


def test_a_queue_span_under_put_events_is_the_delivery_and_unknown_hops_are_observed_edges(config):
    graph = architecture(config)
    spans = [span(ROOT_A, "e" * 16, None, 0.0, 1.0, "eventbridge", "PutEvents app-events", bus="app-events",
                  targets=["work"]),
             span(ROOT_A, "q" * 16, "e" * 16, 0.1, 9.0, "sqs", "queue work", queue="work"),
             span(ROOT_A, "s" * 16, "q" * 16, 9.1, 5.0, "event-source", "SQS work -> worker", queue="work",
                  function="worker"),
             span(ROOT_A, "w" * 16, "s" * 16, 9.2, 4.0, "lambda", "invoke worker", request_id="r1"),
             span(ROOT_A, "x" * 16, "w" * 16, 9.3, 1.0, "eventbridge", "PutEvents app-events"),
             span(ROOT_A, "z" * 16, "w" * 16, 9.3, 1.0, "mystery", "who knows")]
    crossings = traffic(graph, config, spans)
    counts = {k: v.count for k, v in crossings.edges.items()}
    assert counts == {("bus:app-events", "queue:work"): 1, ("queue:work", "fn:worker"): 1,
                      ("fn:worker", "bus:app-events"): 1}
    assert crossings.unexpected == (("fn:worker", "bus:app-events"),)
    edges = {(e["source"], e["target"]): e for e in graph_json(graph, crossings)["edges"]}
    assert edges[("fn:worker", "bus:app-events")]["observed"] and edges[("api", "fn:api")]["count"] == 0
