"""Deploy the managed plane to a real moto server and use it as an application would."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import pytest

from devenv.aws.api import BotoPlaneApi
from devenv.aws.deploy import deploy, plan_only
from devenv.aws.plan import Change, SetQueueAttributes
from devenv.aws.resources import Queue
from devenv.config.model import StackConfig
from devenv.errors import DeployError

pytestmark = pytest.mark.integration


def vary(config: StackConfig, edit: Callable[[dict], None]) -> StackConfig:
    data = config.model_dump(mode="python", by_alias=True)
    edit(data)
    return StackConfig.model_validate(data)


def queue_url(aws, name: str) -> str:
    return aws.sqs.get_queue_url(QueueName=name)["QueueUrl"]


def attributes(aws, name: str) -> dict[str, str]:
    return aws.sqs.get_queue_attributes(QueueUrl=queue_url(aws, name), AttributeNames=["All"])["Attributes"]


def receive_one(aws, name: str, deadline: float = 10.0, **kwargs: Any) -> dict | None:
    """The next message of ``name``, long-polling (1 s at a time) until ``deadline``."""
    end = time.monotonic() + deadline
    url = queue_url(aws, name)
    while time.monotonic() < end:
        messages = aws.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=1,
                                           **kwargs).get("Messages", [])
        if messages:
            return messages[0]
    return None


# ---------------------------------------------------------------- deploy and re-deploy


def test_deploy_creates_the_nedlia_plane(moto, aws, nedlia):
    report = deploy(nedlia, moto)

    assert report.changed and len(report.changes) == 11
    urls = aws.sqs.list_queues()["QueueUrls"]
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == [
        "nedlia-notification", "nedlia-notification-dlq", "nedlia-validation", "nedlia-validation-dlq"]

    validation = attributes(aws, "nedlia-validation")
    assert json.loads(validation["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:nedlia-validation-dlq",
        "maxReceiveCount": 5}
    assert validation["VisibilityTimeout"] == "30"
    statement = json.loads(validation["Policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert attributes(aws, "nedlia-validation-dlq")["MessageRetentionPeriod"] == "1209600"
    assert aws.sqs.list_queue_tags(QueueUrl=queue_url(aws, "nedlia-validation"))["Tags"] == {
        "devenv:stack": "nedlia"}

    for bucket in ("nedlia-videos", "nedlia-notifications"):
        aws.s3.head_bucket(Bucket=bucket)
        assert aws.s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [
            {"Key": "devenv:stack", "Value": "nedlia"}]

    rules = aws.events.list_rules(EventBusName="nedlia-events")["Rules"]
    assert sorted(r["Name"] for r in rules) == ["placement-created", "placement-decided"]
    targets = aws.events.list_targets_by_rule(Rule="placement-created", EventBusName="nedlia-events")
    assert [t["Arn"] for t in targets["Targets"]] == [
        "arn:aws:sqs:us-east-1:123456789012:nedlia-validation"]


def test_second_deploy_plans_nothing(moto, nedlia):
    deploy(nedlia, moto)
    report = deploy(nedlia, moto)
    assert report.actions == () and not report.changed


def test_changed_config_applies_only_the_difference(moto, aws, nedlia):
    deploy(nedlia, moto)

    def edit(data: dict) -> None:
        data["queues"]["nedlia-validation"]["visibility_timeout"] = 60
        data["queues"]["nedlia-audit"] = {}
        del data["event_buses"]["nedlia-events"]["rules"]["placement-decided"]
        del data["buckets"]["nedlia-notifications"]

    changed = vary(nedlia, edit)
    expected = [
        "+ queue nedlia-audit",
        # nedlia-notification is no longer a rule's target: its events policy goes.
        "~ queue nedlia-notification: Policy removed",
        "~ queue nedlia-validation: VisibilityTimeout 30 -> 60",
        "- targets nedlia-events/placement-decided: queue-nedlia-notification",
        "- rule nedlia-events/placement-decided",
        "- bucket nedlia-notifications",
    ]
    assert plan_only(changed, moto).lines() == expected
    assert deploy(changed, moto).lines() == expected

    assert attributes(aws, "nedlia-validation")["VisibilityTimeout"] == "60"
    assert "Policy" not in attributes(aws, "nedlia-notification")
    assert [r["Name"] for r in aws.events.list_rules(EventBusName="nedlia-events")["Rules"]] == [
        "placement-created"]
    assert [b["Name"] for b in aws.s3.list_buckets()["Buckets"]] == ["nedlia-videos"]
    assert deploy(changed, moto).actions == ()


def test_unmanaged_resources_survive_and_a_non_empty_bucket_is_kept(moto, aws, nedlia):
    aws.sqs.create_queue(QueueName="someone-elses")
    aws.s3.create_bucket(Bucket="someone-elses-bucket")
    deploy(nedlia, moto)
    aws.s3.put_object(Bucket="nedlia-videos", Key="intro.mp4", Body=b"...")

    report = deploy(StackConfig(name="nedlia"), moto)

    assert "! bucket nedlia-videos kept: it still holds objects" in report.lines()
    assert "- bucket nedlia-notifications" in report.lines()
    assert [u.rsplit("/", 1)[1] for u in aws.sqs.list_queues()["QueueUrls"]] == ["someone-elses"]
    assert sorted(b["Name"] for b in aws.s3.list_buckets()["Buckets"]) == [
        "nedlia-videos", "someone-elses-bucket"]
    assert [b["Name"] for b in aws.events.list_event_buses()["EventBuses"]] == ["default"]


# ---------------------------------------------------------------- the plane works


def test_an_event_matching_a_rule_lands_in_its_queue(moto, aws, nedlia):
    deploy(nedlia, moto)
    entries = [
        {"EventBusName": "nedlia-events", "Source": "nedlia.elsewhere", "DetailType": "placement.created",
         "Detail": json.dumps({"placement_id": "ignored"})},
        {"EventBusName": "nedlia-events", "Source": "nedlia.placement-service",
         "DetailType": "placement.created", "Detail": json.dumps({"placement_id": "p-1"})},
    ]
    assert aws.events.put_events(Entries=entries)["FailedEntryCount"] == 0

    message = receive_one(aws, "nedlia-validation")
    assert message is not None
    event = json.loads(message["Body"])
    assert (event["source"], event["detail"]) == ("nedlia.placement-service", {"placement_id": "p-1"})
    aws.sqs.delete_message(QueueUrl=queue_url(aws, "nedlia-validation"),
                           ReceiptHandle=message["ReceiptHandle"])
    # The non-matching event, sent first in the same batch, went nowhere.
    for name in ("nedlia-validation", "nedlia-notification"):
        counts = attributes(aws, name)
        assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) \
            == ("0", "0"), name


def test_a_message_received_too_often_ends_in_the_dead_letter_queue(moto, aws, nedlia):
    deploy(nedlia, moto)
    url = queue_url(aws, "nedlia-validation")
    aws.sqs.send_message(QueueUrl=url, MessageBody="poison")

    receives = 0
    end = time.monotonic() + 10
    while time.monotonic() < end:
        # VisibilityTimeout=0 puts the message straight back, as a crashing consumer would.
        got = aws.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=0)
        if not got.get("Messages"):
            break
        receives += 1
    assert receives == 5  # maxReceiveCount

    dead = receive_one(aws, "nedlia-validation-dlq")
    assert dead is not None and dead["Body"] == "poison"


# ---------------------------------------------------------------- failures


def test_an_aws_error_becomes_a_deploy_error_naming_the_resource(moto):
    action = SetQueueAttributes(Queue("ghost", {"VisibilityTimeout": "5"}),
                                (Change("VisibilityTimeout", "30", "5"),))
    with pytest.raises(DeployError) as caught:
        BotoPlaneApi(moto).apply(action)
    assert caught.value.message.startswith("queue ghost: '~ queue ghost: VisibilityTimeout 30 -> 5' failed:")
    assert "NonExistentQueue" in caught.value.message
    assert "Traceback" not in caught.value.message


def test_an_emulator_that_is_not_there_is_a_deploy_error(nothing_listening, nedlia):
    with pytest.raises(DeployError) as caught:
        deploy(nedlia, nothing_listening)
    assert "nothing answers at" in caught.value.message
    assert caught.value.hint


def test_function_targets_deploy_as_the_functions_events_queue_and_read_back_unchanged(moto, aws, nedlia):
    config = vary(nedlia, lambda d: d["event_buses"]["nedlia-events"]["rules"]["placement-created"]
                  ["targets"].append({"function": "audit", "maximum_retry_attempts": 2,
                                      "dead_letter_queue": "nedlia-validation-dlq"}))
    deploy(config, moto)
    targets = aws.events.list_targets_by_rule(Rule="placement-created", EventBusName="nedlia-events")
    assert {t["Id"]: t["Arn"] for t in targets["Targets"]} == {
        "function-audit": "arn:aws:sqs:us-east-1:123456789012:devenv-events-to-audit",
        "queue-nedlia-validation": "arn:aws:sqs:us-east-1:123456789012:nedlia-validation",
    }
    url = queue_url(aws, "devenv-events-to-audit")
    assert aws.sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"devenv:stack": "nedlia"}
    assert attributes(aws, "devenv-events-to-audit")["VisibilityTimeout"] == "30"
    assert deploy(config, moto).actions == ()


def test_an_event_for_a_function_target_is_accepted_and_queued_for_the_function(moto, aws, nedlia):
    # A Lambda ARN target makes moto answer put_events with a 500; the queue target does not.
    config = vary(nedlia, lambda d: d["event_buses"]["nedlia-events"]["rules"]["placement-created"]
                  ["targets"].append({"function": "audit"}))
    deploy(config, moto)
    response = aws.events.put_events(Entries=[{
        "EventBusName": "nedlia-events", "Source": "nedlia.placement-service",
        "DetailType": "placement.created", "Detail": json.dumps({"placement_id": "p-9"})}])
    assert response["FailedEntryCount"] == 0

    message = receive_one(aws, "devenv-events-to-audit")
    assert message is not None
    assert json.loads(message["Body"])["detail"] == {"placement_id": "p-9"}
