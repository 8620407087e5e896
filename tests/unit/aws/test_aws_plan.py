"""plan(): desired vs observed managed plane -> ordered actions. No emulator involved."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from devenv.aws.deploy import AwsEndpoint, deploy, plan_only
from devenv.aws.memory import InMemoryPlaneApi
from devenv.aws.plan import (
    Change,
    CreateQueue,
    DeleteBucket,
    DeleteQueue,
    PutRule,
    PutTargets,
    RemoveTargets,
    Retain,
    SetQueueAttributes,
    canonical_json,
    plan,
    same_attribute,
)
from devenv.aws.resources import (
    Bucket,
    Bus,
    ManagedPlane,
    Queue,
    Redrive,
    ResourceKind,
    Rule,
    Target,
    TargetKind,
    desired_plane,
)
from devenv.config.model import StackConfig
from devenv.errors import DeployError

EP = AwsEndpoint("memory://", "us-east-1")
EMPTY = ManagedPlane(buses=(Bus("default"),))


def deployed(config: StackConfig) -> InMemoryPlaneApi:
    api = InMemoryPlaneApi()
    deploy(config, EP, api=api)
    return api


def described(actions) -> list[str]:
    return [a.describe() for a in actions]


# ---------------------------------------------------------------- whole plans


def test_empty_to_full_creates_everything_in_dependency_order(nedlia):
    assert described(plan(desired_plane(nedlia), EMPTY, "nedlia")) == [
        "+ bucket nedlia-notifications",
        "+ bucket nedlia-videos",
        "+ queue nedlia-notification-dlq",
        "+ queue nedlia-notification",
        "+ queue nedlia-validation-dlq",
        "+ queue nedlia-validation",
        "+ bus nedlia-events",
        "+ rule nedlia-events/placement-created",
        "+ rule nedlia-events/placement-decided",
        "+ targets nedlia-events/placement-created: queue-nedlia-validation -> queue nedlia-validation",
        "+ targets nedlia-events/placement-decided: queue-nedlia-notification -> queue nedlia-notification",
    ]


def test_same_plane_plans_nothing(nedlia):
    desired = desired_plane(nedlia)
    assert plan(desired, desired, "nedlia") == []


def test_second_deploy_plans_nothing(nedlia):
    api = deployed(nedlia)
    report = deploy(nedlia, EP, api=api)
    assert report.actions == ()
    assert not report.changed


def test_dead_letter_queue_is_created_before_the_queue_redriving_to_it(vary):
    # "a-work" sorts before "z-dlq"; the redrive dependency must still win.
    config = vary(lambda d: d["queues"].update({
        "a-work": {"dlq": "z-dlq", "max_receive_count": 2}, "z-dlq": {}}))
    names = [a.queue.name for a in plan(desired_plane(config), EMPTY, "nedlia")
             if isinstance(a, CreateQueue)]
    assert names.index("z-dlq") < names.index("a-work")


# ---------------------------------------------------------------- changes


def test_changed_attribute_is_one_set_queue_attributes(nedlia, vary):
    api = deployed(nedlia)
    changed = vary(lambda d: d["queues"]["nedlia-validation"].update(visibility_timeout=60))

    actions = plan_only(changed, EP, api=api).actions

    assert actions == (SetQueueAttributes(desired_plane(changed).queue("nedlia-validation"),
                                          (Change("VisibilityTimeout", "30", "60"),)),)
    assert actions[0].describe() == "~ queue nedlia-validation: VisibilityTimeout 30 -> 60"
    deploy(changed, EP, api=api)
    assert deploy(changed, EP, api=api).actions == ()


def test_changed_redrive_is_described_by_queue_and_count(nedlia, vary):
    api = deployed(nedlia)
    changed = vary(lambda d: d["queues"]["nedlia-validation"].update(max_receive_count=7))
    assert described(plan_only(changed, EP, api=api).actions) == [
        "~ queue nedlia-validation: RedrivePolicy nedlia-validation-dlq after 5 -> "
        "nedlia-validation-dlq after 7"]


def test_disabled_rule_is_one_put_rule(nedlia, vary):
    api = deployed(nedlia)
    changed = vary(lambda d: d["event_buses"]["nedlia-events"]["rules"]["placement-created"]
                   .update(enabled=False))
    actions = plan_only(changed, EP, api=api).actions
    assert described(actions) == ["~ rule nedlia-events/placement-created: state ENABLED -> DISABLED"]
    assert isinstance(actions[0], PutRule) and not actions[0].creates


def test_pattern_equality_ignores_key_and_value_order(nedlia):
    desired = desired_plane(nedlia)
    rule = desired.rule("nedlia-events", "placement-decided")
    reordered = json.dumps({"detail-type": ["placement.rejected", "placement.validated"],
                            "source": ["nedlia.validation-service"]}, indent=2)
    observed = replace(desired, rules=tuple(replace(r, pattern=reordered) if r == rule else r
                                            for r in desired.rules))
    assert plan(desired, observed, "nedlia") == []


def test_changed_pattern_is_put_rule(nedlia, vary):
    api = deployed(nedlia)
    changed = vary(lambda d: d["event_buses"]["nedlia-events"]["rules"]["placement-created"]
                   ["pattern"].update({"detail-type": ["placement.created", "placement.updated"]}))
    assert described(plan_only(changed, EP, api=api).actions) == [
        "~ rule nedlia-events/placement-created: pattern changed"]


def test_stale_target_on_a_kept_rule_is_removed_after_creations(nedlia):
    api = deployed(nedlia)
    extra = Target("nedlia-events", "placement-created", "old", TargetKind.QUEUE, "nedlia-validation-dlq")
    api.plane = replace(api.plane, targets=(*api.plane.targets, extra))
    assert plan_only(nedlia, EP, api=api).actions == (
        RemoveTargets("nedlia-events", "placement-created", ("old",)),)


def test_changed_target_retry_policy_is_put_targets(nedlia, vary):
    api = deployed(nedlia)
    changed = vary(lambda d: d["event_buses"]["nedlia-events"]["rules"]["placement-created"]
                   ["targets"][0].update(maximum_retry_attempts=3))
    actions = plan_only(changed, EP, api=api).actions
    assert len(actions) == 1 and isinstance(actions[0], PutTargets)
    assert actions[0].targets[0].maximum_retry_attempts == 3


# ---------------------------------------------------------------- removals and ownership


def test_removed_managed_resources_are_deleted_targets_rules_then_queues(nedlia, vary):
    api = deployed(nedlia)

    def drop_notification(d):
        del d["event_buses"]["nedlia-events"]["rules"]["placement-decided"]
        del d["queues"]["nedlia-notification"], d["queues"]["nedlia-notification-dlq"]

    assert described(plan_only(vary(drop_notification), EP, api=api).actions) == [
        "- targets nedlia-events/placement-decided: queue-nedlia-notification",
        "- rule nedlia-events/placement-decided",
        "- queue nedlia-notification",
        "- queue nedlia-notification-dlq",
    ]


def test_everything_removed_deletes_in_reverse_dependency_order(nedlia):
    api = deployed(nedlia)
    assert described(plan_only(StackConfig(name="nedlia"), EP, api=api).actions) == [
        "- targets nedlia-events/placement-created: queue-nedlia-validation",
        "- targets nedlia-events/placement-decided: queue-nedlia-notification",
        "- rule nedlia-events/placement-created",
        "- rule nedlia-events/placement-decided",
        "- bus nedlia-events",
        "- queue nedlia-validation",
        "- queue nedlia-validation-dlq",
        "- queue nedlia-notification",
        "- queue nedlia-notification-dlq",
        "- bucket nedlia-notifications",
        "- bucket nedlia-videos",
    ]


def test_unmanaged_resources_are_never_touched(nedlia):
    desired = desired_plane(nedlia)
    observed = replace(
        desired,
        buckets=(*desired.buckets, Bucket("legacy-bucket", empty=False),
                 Bucket("their-bucket", stack="other")),
        queues=(*desired.queues, Queue("legacy", {"VisibilityTimeout": "5"}),
                Queue("theirs", stack="other")),
        buses=(*desired.buses, Bus("legacy-bus")),
        rules=(*desired.rules, Rule("legacy-bus", "legacy-rule", '{"source": ["x"]}')),
        targets=(*desired.targets, Target("legacy-bus", "legacy-rule", "t", TargetKind.QUEUE, "legacy")),
    )
    assert plan(desired, observed, "nedlia") == []


def test_resource_of_another_stack_is_refused(nedlia):
    desired = desired_plane(nedlia)
    observed = replace(desired, queues=tuple(replace(q, stack="other") if q.name == "nedlia-validation"
                                             else q for q in desired.queues))
    with pytest.raises(DeployError) as caught:
        plan(desired, observed, "nedlia")
    assert caught.value.details == ["queue nedlia-validation belongs to stack 'other'"]


def test_untagged_declared_queue_is_converged_but_never_deleted(nedlia):
    desired = desired_plane(nedlia)
    wanted = desired.queue("nedlia-validation")
    existing = Queue("nedlia-validation", {**wanted.attributes, "VisibilityTimeout": "10"},
                     wanted.redrive, stack=None)
    observed = replace(desired, queues=tuple(existing if q.name == existing.name else q
                                             for q in desired.queues))
    assert described(plan(desired, observed, "nedlia")) == [
        "~ queue nedlia-validation: VisibilityTimeout 10 -> 30"]

    without = replace(desired, queues=tuple(q for q in desired.queues if q.name != existing.name))
    assert DeleteQueue("nedlia-validation") not in plan(without, observed, "nedlia")


def test_non_empty_bucket_is_kept_and_reported(nedlia):
    desired = desired_plane(nedlia)
    observed = replace(desired, buckets=(*desired.buckets,
                                         Bucket("nedlia-old", stack="nedlia", empty=False),
                                         Bucket("nedlia-older", stack="nedlia")))
    actions = plan(desired, observed, "nedlia")
    assert actions == [Retain(ResourceKind.BUCKET, "nedlia-old", "it still holds objects"),
                       DeleteBucket("nedlia-older")]
    assert actions[0].describe() == "! bucket nedlia-old kept: it still holds objects"
    assert not actions[0].mutates


def test_managed_bus_holding_foreign_rules_is_kept(nedlia):
    desired = desired_plane(nedlia)
    observed = replace(desired,
                       buses=(*desired.buses, Bus("old-bus", stack="nedlia")),
                       rules=(*desired.rules, Rule("old-bus", "mine", "{}", stack="nedlia"),
                              Rule("old-bus", "someone-elses", "{}")))
    assert described(plan(desired, observed, "nedlia")) == [
        "- rule old-bus/mine",
        "! bus old-bus kept: it holds rules devenv did not create: someone-elses",
    ]


def test_default_bus_is_never_created_nor_deleted(vary):
    config = vary(lambda d: d["event_buses"].update(
        {"default": {"rules": {"all": {"pattern": {"source": ["x"]},
                                       "targets": [{"queue": "nedlia-validation"}]}}}}))
    lines = described(plan(desired_plane(config), EMPTY, "nedlia"))
    assert "+ bus default" not in lines and "+ rule default/all" in lines
    gone = replace(EMPTY, buses=(Bus("default", stack="nedlia"),))
    assert plan(ManagedPlane(), gone, "nedlia") == []


# ---------------------------------------------------------------- semantic comparison


@pytest.mark.parametrize("name,before,after,same", [
    ("VisibilityTimeout", "30", "30", True),
    ("VisibilityTimeout", "030", "30", True),
    ("VisibilityTimeout", "30", "60", False),
    ("Policy", None, "", True),
    ("Policy", '{"a": [1, 2], "b": {"c": "d"}}', '{"b":{"c":"d"},"a":[2,1]}', True),
    ("Policy", '{"Condition": {"ArnEquals": {"aws:SourceArn": ["x"]}}}',
     '{"Condition": {"ArnEquals": {"aws:SourceArn": "x"}}}', True),
    ("Policy", '{"a": 1}', "", False),
])
def test_queue_attributes_compare_semantically(name, before, after, same):
    assert same_attribute(name, before, after) is same


def test_pattern_lists_are_sets_but_not_scalars():
    assert canonical_json('{"a": ["x", "y"]}') == canonical_json('{"a": ["y", "x"]}')
    assert canonical_json('{"a": ["x"]}') != canonical_json('{"a": "x"}')


# ---------------------------------------------------------------- desired plane


def test_desired_queue_carries_redrive_and_an_events_policy_for_its_rules(nedlia):
    queue = desired_plane(nedlia, account="000000000000").queue("nedlia-validation")
    assert queue.redrive == Redrive("nedlia-validation-dlq", 5)
    assert queue.stack == "nedlia"
    policy = json.loads(queue.attributes["Policy"])
    statement = policy["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == "arn:aws:sqs:us-east-1:000000000000:nedlia-validation"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == [
        "arn:aws:events:us-east-1:000000000000:rule/nedlia-events/placement-created"]
    assert "Policy" not in desired_plane(nedlia).queue("nedlia-validation-dlq").attributes


# Function targets (deployed through an internal queue): test_aws_function_targets.py
