"""The events moto's EventBridge delivers to targets have AWS's shape
(devenv/infra/moto_patches.py ``_restore_event_account``)."""

from __future__ import annotations

import json

AWS_KEYS = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]


def test_a_rule_delivers_every_key_aws_sends_in_its_order_and_transformers_still_work(moto, aws):
    url = aws.sqs.create_queue(QueueName="shaped")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.events.create_event_bus(Name="shapes")
    aws.events.put_rule(Name="all", EventBusName="shapes", EventPattern=json.dumps({"source": ["shape.test"]}))
    aws.events.put_targets(Rule="all", EventBusName="shapes", Targets=[
        {"Id": "plain", "Arn": arn},
        {"Id": "shaped", "Arn": arn, "InputTransformer": {"InputPathsMap": {"who": "$.account"},
                                                          "InputTemplate": '{"who": "<who>"}'}}])
    aws.events.put_events(Entries=[{"Source": "shape.test", "DetailType": "thing.done",
                                    "Detail": json.dumps({"n": 1}), "EventBusName": "shapes",
                                    "Resources": ["arn:aws:s3:::b"]}])
    bodies = [json.loads(m["Body"]) for m in aws.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])]
    plain = next(b for b in bodies if "detail" in b)
    assert list(plain) == AWS_KEYS
    account = arn.split(":")[4]
    assert (plain["account"], plain["version"], plain["resources"], plain["detail"]) == (
        account, "0", ["arn:aws:s3:::b"], {"n": 1})
    assert {"who": account} in bodies
