"""The pure translations between resources and AWS request/response shapes.

What apply sends, observe must read back as equal, or every deploy would plan changes.
"""

from __future__ import annotations

import json
from dataclasses import replace

from devenv.aws.apply import create_queue_attributes, redrive_policy, target_request
from devenv.aws.observe import queue_from_aws, rule_from_aws, tags_from_aws, target_from_aws
from devenv.aws.plan import queue_changes, rule_changes
from devenv.aws.resources import Arns, Queue, Redrive, RuleState, Target, TargetKind, desired_plane

ARNS = Arns("us-east-1", "123456789012")


def test_created_queue_reads_back_without_changes(nedlia):
    for queue in desired_plane(nedlia).queues:
        echoed = queue_from_aws(queue.name, create_queue_attributes(ARNS, queue),
                                {"devenv:stack": "nedlia"})
        assert queue_changes(queue, echoed) == ()
        assert echoed.stack == "nedlia"


def test_queue_from_aws_parses_redrive_and_keeps_only_managed_attributes():
    queue = queue_from_aws("q", {
        "VisibilityTimeout": "30",
        "QueueArn": "arn:aws:sqs:us-east-1:123456789012:q",
        "ApproximateNumberOfMessages": "4",
        "Policy": "",
        # AWS returns maxReceiveCount as a string when it was set as one.
        "RedrivePolicy": '{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:q-dlq", '
                         '"maxReceiveCount": "3"}',
    }, {})
    assert queue == Queue("q", {"VisibilityTimeout": "30"}, Redrive("q-dlq", 3), stack=None)


def test_redrive_policy_is_removed_with_an_empty_string():
    assert redrive_policy(ARNS, Queue("q")) == ""
    assert json.loads(redrive_policy(ARNS, Queue("q", redrive=Redrive("d", 2)))) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:d", "maxReceiveCount": 2}


def test_fifo_queue_is_created_as_fifo():
    assert create_queue_attributes(ARNS, Queue("jobs.fifo"))["FifoQueue"] == "true"


def test_targets_read_back_as_sent():
    plain = Target("b", "r", "t1", TargetKind.QUEUE, "q")
    tuned = Target("b", "r", "t2", TargetKind.FUNCTION, "fn", dead_letter_queue="dlq",
                   maximum_retry_attempts=2, maximum_event_age=120)
    assert target_request(ARNS, plain) == {"Id": "t1", "Arn": "arn:aws:sqs:us-east-1:123456789012:q"}
    for target in (plain, tuned):
        assert target_from_aws("b", "r", target_request(ARNS, target)) == target


def test_unknown_target_arns_are_kept_verbatim():
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/x"
    target = target_from_aws("b", "r", {"Id": "l", "Arn": arn})
    assert (target.kind, target.name) == (TargetKind.OTHER, arn)
    aliased = target_from_aws("b", "r", {"Id": "f", "Arn": "arn:aws:lambda:us-east-1:1:function:fn:live"})
    assert (aliased.kind, aliased.name) == (TargetKind.FUNCTION, "fn")


def test_rule_from_aws_without_description_matches_a_rule_without_one(nedlia):
    desired = desired_plane(nedlia).rule("nedlia-events", "placement-created")
    desired = replace(desired, description="")
    seen = rule_from_aws({"Name": desired.name, "EventBusName": desired.bus, "State": "ENABLED",
                          "EventPattern": desired.pattern}, tags_from_aws([]))
    assert seen.state is RuleState.ENABLED and seen.stack is None
    assert rule_changes(desired, seen) == ()
