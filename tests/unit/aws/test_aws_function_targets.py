"""EventBridge rules with a function target: deployed as an SQS target on the function's
internal events queue (see devenv/aws/resources.py). No emulator involved."""

from __future__ import annotations

import json

import pytest

from devenv.aws.deploy import AwsEndpoint, deploy, plan_only
from devenv.aws.memory import InMemoryPlaneApi
from devenv.aws.plan import CreateQueue, DeleteQueue, PutTargets, RemoveTargets
from devenv.aws.resources import (
    QUEUE_ATTRIBUTES,
    Arns,
    TargetKind,
    desired_plane,
    function_events_queue,
    function_targets,
)
from devenv.errors import DeployError

EP = AwsEndpoint("memory://", "us-east-1")
ARNS = Arns("us-east-1", "123456789012")


def audit_target(data: dict, rule: str = "placement-created", **extra) -> None:
    data["event_buses"]["nedlia-events"]["rules"][rule]["targets"].append({"function": "audit", **extra})


def with_audit_function(data: dict, timeout: float = 3) -> None:
    data["functions"] = {"audit": {"handler": "audit.handler", "code": "services/audit",
                                   "timeout": timeout}}


def test_a_function_target_is_a_queue_target_on_the_functions_events_queue(vary):
    config = vary(lambda d: (with_audit_function(d), audit_target(d)))
    plane = desired_plane(config)

    target = next(t for t in plane.targets if t.id == "function-audit")
    assert (target.kind, target.name) == (TargetKind.QUEUE, "devenv-events-to-audit")
    assert ARNS.target(target) == "arn:aws:sqs:us-east-1:123456789012:devenv-events-to-audit"
    assert not any(t.kind is TargetKind.FUNCTION for t in plane.targets)
    assert function_targets(config) == {"audit": "devenv-events-to-audit"}


def test_the_events_queue_is_tagged_open_to_its_rules_and_outlasts_the_function(vary):
    config = vary(lambda d: (with_audit_function(d, timeout=100), audit_target(d),
                             audit_target(d, "placement-decided")))
    queue = desired_plane(config).queue("devenv-events-to-audit")

    assert queue.stack == "nedlia" and queue.redrive is None
    assert set(queue.attributes) == set(QUEUE_ATTRIBUTES)  # every owned attribute: no drift
    assert queue.attributes["VisibilityTimeout"] == "600"  # 6 x the function's 100 s timeout
    assert queue.attributes["MessageRetentionPeriod"] == "86400"  # EventBridge's longest event age
    statement = json.loads(queue.attributes["Policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Resource"] == "arn:aws:sqs:us-east-1:123456789012:devenv-events-to-audit"
    assert sorted(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == [
        "arn:aws:events:us-east-1:123456789012:rule/nedlia-events/placement-created",
        "arn:aws:events:us-east-1:123456789012:rule/nedlia-events/placement-decided"]


def test_a_short_function_timeout_keeps_the_sqs_default_visibility(vary):
    config = vary(lambda d: (with_audit_function(d, timeout=1), audit_target(d)))
    assert desired_plane(config).queue("devenv-events-to-audit").attributes["VisibilityTimeout"] == "30"


def test_one_queue_per_function_however_many_rules_target_it(vary):
    config = vary(lambda d: (with_audit_function(d), audit_target(d), audit_target(d, "placement-decided")))
    plane = desired_plane(config)
    assert [q.name for q in plane.queues].count("devenv-events-to-audit") == 1
    assert {t.name for t in plane.targets if t.id == "function-audit"} == {"devenv-events-to-audit"}


def test_target_retry_policy_and_dead_letter_queue_stay_on_the_target(vary):
    config = vary(lambda d: (with_audit_function(d), audit_target(
        d, maximum_retry_attempts=2, dead_letter_queue="nedlia-validation-dlq")))
    target = next(t for t in desired_plane(config).targets if t.id == "function-audit")
    assert (target.maximum_retry_attempts, target.dead_letter_queue) == (2, "nedlia-validation-dlq")


def test_long_function_names_fit_sqs_and_never_share_a_queue():
    a, b = "f" * 63 + "a", "f" * 63 + "b"
    assert len(function_events_queue(a)) == 80 and len(function_events_queue(b)) == 80
    assert function_events_queue(a) != function_events_queue(b)
    assert function_events_queue(a).startswith("devenv-events-to-fff")
    assert function_events_queue("x" * 63) == "devenv-events-to-" + "x" * 63  # exactly 80: kept whole


def test_deploying_a_function_target_creates_its_queue_first_then_converges(vary):
    config = vary(lambda d: (with_audit_function(d), audit_target(d)))
    api = InMemoryPlaneApi()
    actions = deploy(config, EP, api=api).actions

    creates = [a.queue.name for a in actions if isinstance(a, CreateQueue)]
    put = next(a for a in actions if isinstance(a, PutTargets) and a.rule == "placement-created")
    assert "devenv-events-to-audit" in creates
    assert actions.index(next(a for a in actions if isinstance(a, CreateQueue)
                              and a.queue.name == "devenv-events-to-audit")) < actions.index(put)
    assert "function-audit -> queue devenv-events-to-audit" in put.describe()
    assert deploy(config, EP, api=api).actions == ()


def test_removing_the_last_function_target_removes_its_queue(nedlia, vary):
    config = vary(lambda d: (with_audit_function(d), audit_target(d)))
    api = InMemoryPlaneApi()
    deploy(config, EP, api=api)

    actions = plan_only(nedlia, EP, api=api).actions
    assert RemoveTargets("nedlia-events", "placement-created", ("function-audit",)) in actions
    assert DeleteQueue("devenv-events-to-audit") in actions


def test_a_config_queue_with_the_internal_name_is_refused(vary):
    config = vary(lambda d: (with_audit_function(d), audit_target(d),
                             d["queues"].update({"devenv-events-to-audit": {}})))
    with pytest.raises(DeployError) as caught:
        desired_plane(config)
    assert "devenv-events-to-audit" in caught.value.message and caught.value.hint
