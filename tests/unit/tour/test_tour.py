"""The tour's pure part: steps derived from a config (a minimal stack, and Nedlia's) and from
one request's spans."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devenv.config.loader import load_project
from devenv.config.model import StackConfig, TourConfig
from devenv.config.references import check_references
from devenv.observe.spans import Outcome, Span, waterfall
from devenv.tour.architecture import how_to_add_a_request, overview
from devenv.tour.trip import complete, hops, trip, whole_trip

REPO = Path(__file__).resolve().parents[3]
ROOT = "1-6b000001-aaaaaaaaaaaaaaaaaaaaaaaa"


def minimal(**more) -> StackConfig:
    """One route and one queue: the smallest stack with something to explain."""
    return StackConfig.model_validate({
        "name": "mini", "queues": {"jobs": {}},
        "functions": {"web": {"handler": "app.handler", "code": "fn"},
                      "worker": {"handler": "app.handler", "code": "fn", "events": [{"sqs": {"queue": "jobs"}}]}},
        "api": {"routes": [{"method": "POST", "path": "/jobs/{id}", "function": "web"}]}, **more})


@pytest.fixture(scope="module")
def nedlia() -> StackConfig:
    return load_project(REPO / "devenv.yaml", environ={}, use_overlay=False).config


def test_a_minimal_stack_is_explained_from_its_config():
    steps = overview(minimal(infra={"postgres": False, "redis": False}))
    assert [s.title for s in steps] == ["The API: api", "Lambda functions", "SQS queues"]
    api, functions, queues = steps
    assert api.facts == [("POST /jobs/{id}", "function web")]
    facts = dict(functions.facts)
    assert "invoked by API POST /jobs/{id}" in facts["web"]
    assert "invoked by queue jobs (event source)" in facts["worker"]
    assert queues.facts == [("jobs", "feeds function worker; visibility 30 s")]


def test_without_a_tour_section_the_tour_says_how_to_add_a_request_that_validates():
    step = how_to_add_a_request(minimal())
    snippet = "\n".join(line for _, line in step.facts)
    assert "path: /jobs/example" in snippet and "at: function web" in snippet
    config = minimal(tour=yaml.safe_load(snippet)["tour"])
    assert config.tour.request.method == "POST" and check_references(config) == []


def test_nedlia_is_explained_from_its_own_config(nedlia):
    steps = {s.title: dict(s.facts) for s in overview(nedlia)}
    assert set(steps["The API: nedlia-api"]) == {f"{r.method} {r.path}" for r in nedlia.api.routes}
    assert steps["ECS services behind the internal ALB"]["placement-service"].startswith("2 tasks (2-10 at 70% CPU)")
    assert "/placement/* (priority 10)" in steps["ECS services behind the internal ALB"]["placement-service"]
    assert steps["EventBridge rules"]["nedlia-events: placement-created"].endswith("-> queue nedlia-validation")
    assert "to nedlia-validation-dlq after 5 receives" in steps["SQS queues"]["nedlia-validation"]
    assert set(steps["Storage"]) == {"PostgreSQL", "Redis", "bucket nedlia-videos", "bucket nedlia-notifications"}


def test_nedlias_tour_lives_in_its_devenv_yaml_and_names_hops_it_defines(nedlia):
    assert nedlia.tour.request.method == "POST" and nedlia.tour.request.path == "/placements"
    assert [s.at for s in nedlia.tour.steps][-1] == "service notification-service"
    assert check_references(nedlia) == []


@pytest.mark.parametrize(("at", "message"), [
    ("service placement", "service 'placement' is not defined under services (defined: web)"),
    ("queue job", "queue 'job' is not defined under queues, did you mean 'jobs'?"),
    ("alb", "'alb' is not defined (there is no `load_balancer` section)"),
])
def test_a_tour_step_naming_an_undefined_hop_is_a_located_problem(at, message):
    problems = check_references(minimal(services={"web": {"command": ["x"]}},
                                        tour={"request": {"path": "/jobs/1"}, "steps": [{"at": at}]}))
    assert [(p.path, p.message) for p in problems] == [(("tour", "steps", 0, "at"), message)]


def test_a_tour_step_must_name_a_kind_of_hop():
    with pytest.raises(ValueError, match="at"):
        TourConfig.model_validate({"request": {"path": "/x"}, "steps": [{"at": "lambda web"}]})


def span(sid, parent, start, component, operation, ms=10.0, outcome=Outcome.OK, **attrs) -> Span:
    return Span(ROOT, sid.ljust(16, "0"), parent.ljust(16, "0") if parent else None, component, operation,
                start, ms, outcome, attrs)


def placement_trip() -> list[Span]:
    """The spans one POST /placements leaves on Nedlia's stack (as recorded on a real run)."""
    return [
        span("gw", None, 0.000, "apigateway", "POST /local/placements", 198, method="POST", resource="/placements",
             function="api", status=201),
        span("fn", "gw", 0.001, "lambda", "invoke api", 168, function="api", cold=False),
        span("alb1", "fn", 0.010, "alb", "POST /placement/placements", 99, service="placement-service", status=201),
        span("ecs1", "alb1", 0.011, "ecs", "task placement-service", 99, service="placement-service",
             task="907f998e9853", address="127.161.0.3:8000", status=201),
        span("eb1", "ecs1", 0.050, "eventbridge", "PutEvents nedlia-events", 11, bus="nedlia-events",
             source="nedlia.placement-service", detail_type="placement.created", targets=["nedlia-validation"]),
        span("sqs1", "eb1", 0.060, "sqs", "queue nedlia-validation", 26, queue="nedlia-validation", receive_count=1),
        span("es1", "sqs1", 0.090, "event-source", "SQS nedlia-validation -> validation-worker", 1243,
             queue="nedlia-validation", function="validation-worker", batch_size=1, verdict="succeeded"),
        span("wk1", "es1", 0.091, "lambda", "invoke validation-worker", 1242, function="validation-worker", cold=True),
        span("alb2", "wk1", 1.100, "alb", "POST /validation/validate", 118, service="validation-service", status=200),
        span("ecs2", "alb2", 1.101, "ecs", "task validation-service", 118, service="validation-service", status=200),
        span("eb2", "ecs2", 1.200, "eventbridge", "PutEvents nedlia-events", 1, bus="nedlia-events",
             source="nedlia.validation-service", detail_type="placement.validated", targets=["nedlia-notification"]),
        span("sqs2", "eb2", 1.210, "sqs", "queue nedlia-notification", 7, queue="nedlia-notification"),
        span("es2", "sqs2", 1.220, "event-source", "SQS nedlia-notification -> notification-worker", 1306,
             queue="nedlia-notification", function="notification-worker", batch_size=1, verdict="succeeded"),
        span("wk2", "es2", 1.221, "lambda", "invoke notification-worker", 1306, function="notification-worker"),
        span("alb3", "wk2", 2.300, "alb", "POST /notification/notifications", 156, service="notification-service"),
        span("ecs3", "alb3", 2.301, "ecs", "task notification-service", 155, service="notification-service"),
    ]


def test_a_placements_spans_become_one_step_per_hop_with_nedlias_sentences(nedlia):
    steps = trip(nedlia, nedlia.tour, placement_trip())
    assert [s.title for s in steps] == [
        "API Gateway -> function api",
        "ALB -> service placement-service",
        "bus nedlia-events -> queue nedlia-validation",
        "queue nedlia-validation -> function validation-worker",
        "ALB -> service validation-service",
        "bus nedlia-events -> queue nedlia-notification",
        "queue nedlia-notification -> function notification-worker",
        "ALB -> service notification-service",
    ]
    says = {step.at: step.say for step in nedlia.tour.steps}
    assert steps[1].say == says["service placement-service"] and steps[2].say is None
    assert "rule placement-created sends it to queue nedlia-validation" in steps[2].explanation
    assert "a message received 5 times without success goes to nedlia-validation-dlq" in steps[3].explanation
    assert dict(steps[3].facts)["batch"] == "1 message -> validation-worker: succeeded"
    assert dict(steps[1].facts)["task"].startswith("907f998e at 127.161.0.3:8000 answered 201")


def test_the_trip_is_complete_only_once_every_named_hop_is_reached(nedlia):
    spans = placement_trip()
    assert complete(nedlia.tour, hops(nedlia, spans))
    partial = spans[:-2]  # notification-service not reached yet
    assert not complete(nedlia.tour, hops(nedlia, partial))
    steps = trip(nedlia, nedlia.tour, partial)
    assert steps[-1].title == "service notification-service (not reached)"


def test_a_failed_hop_says_so_and_the_whole_trip_lists_every_span(nedlia):
    spans = placement_trip()
    spans[7] = span("wk1", "es1", 0.091, "lambda", "invoke validation-worker", 5, Outcome.ERROR,
                    function="validation-worker", error="Runtime.ExitError")
    step = trip(nedlia, nedlia.tour, spans)[3]
    assert dict(step.facts)["function validation-worker"].endswith("FAILED (Runtime.ExitError)")
    whole = whole_trip(ROOT, waterfall(spans))
    assert len(whole.facts) == len(spans) and whole.facts[1][0] == " lambda"


def test_a_function_invoked_directly_starts_its_own_hop():
    config = minimal()
    found = hops(config, [span("x", None, 0.0, "lambda", "invoke worker", function="worker")])
    assert [h.nodes for h in found] == [("fn:worker",)]
    tour = TourConfig.model_validate({"request": {"path": "/jobs/1"}, "steps": [{"at": "function worker"}]})
    assert trip(config, tour, [span("x", None, 0.0, "lambda", "invoke worker", function="worker")])[0].title == \
        "function worker"
