"""Carry out one planned action on the emulator, through boto3.

Each action is one or a few API calls; the translation to AWS request shapes lives here
and nowhere else. Errors propagate as botocore exceptions; ``api.BotoPlaneApi`` turns them
into DeployError naming the resource.
"""

from __future__ import annotations

import json
from typing import Any

from devenv.aws.endpoint import AwsClients
from devenv.aws.plan import (
    Action,
    CreateBucket,
    CreateBus,
    CreateQueue,
    DeleteBucket,
    DeleteBus,
    DeleteQueue,
    DeleteRule,
    PutRule,
    PutTargets,
    RemoveTargets,
    Retain,
    SetBucketVersioning,
    SetQueueAttributes,
)
from devenv.aws.resources import (
    DEFAULT_EVENT_AGE,
    DEFAULT_RETRY_ATTEMPTS,
    STACK_TAG,
    Arns,
    Queue,
    Target,
)


class PartialFailure(Exception):
    """An API call that answered 200 but reported failed entries (PutTargets, RemoveTargets)."""


def redrive_policy(arns: Arns, queue: Queue) -> str:
    """RedrivePolicy as SQS wants it, or '' (which removes it)."""
    if queue.redrive is None:
        return ""
    return json.dumps({"deadLetterTargetArn": arns.queue(queue.redrive.dlq),
                       "maxReceiveCount": queue.redrive.max_receive_count})


def create_queue_attributes(arns: Arns, queue: Queue) -> dict[str, str]:
    attributes = {k: v for k, v in queue.attributes.items() if v != ""}
    if queue.redrive:
        attributes["RedrivePolicy"] = redrive_policy(arns, queue)
    if queue.fifo:
        attributes["FifoQueue"] = "true"
    return attributes


def target_request(arns: Arns, target: Target) -> dict[str, Any]:
    """One PutTargets entry; retry policy and DLQ only when they differ from AWS's defaults."""
    entry: dict[str, Any] = {"Id": target.id, "Arn": arns.target(target)}
    if (target.maximum_retry_attempts, target.maximum_event_age) != (
            DEFAULT_RETRY_ATTEMPTS, DEFAULT_EVENT_AGE):
        entry["RetryPolicy"] = {"MaximumRetryAttempts": target.maximum_retry_attempts,
                                "MaximumEventAgeInSeconds": target.maximum_event_age}
    if target.dead_letter_queue:
        entry["DeadLetterConfig"] = {"Arn": arns.queue(target.dead_letter_queue)}
    return entry


def _tags(stack: str | None) -> list[dict[str, str]]:
    return [{"Key": STACK_TAG, "Value": stack}] if stack else []


def apply_action(clients: AwsClients, arns: Arns, action: Action) -> None:
    """Perform ``action``; creations tag the resource with its stack."""
    match action:
        case CreateBucket(bucket=bucket):
            s3 = clients.s3
            request: dict[str, Any] = {"Bucket": bucket.name}
            if arns.region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
                request["CreateBucketConfiguration"] = {"LocationConstraint": arns.region}
            s3.create_bucket(**request)
            if bucket.stack:
                s3.put_bucket_tagging(Bucket=bucket.name, Tagging={"TagSet": _tags(bucket.stack)})
            if bucket.versioning:
                s3.put_bucket_versioning(Bucket=bucket.name,
                                         VersioningConfiguration={"Status": "Enabled"})
        case SetBucketVersioning(name=name, enabled=enabled):
            clients.s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled" if enabled else "Suspended"})
        case CreateQueue(queue=queue):
            request = {"QueueName": queue.name, "Attributes": create_queue_attributes(arns, queue)}
            if queue.stack:
                request["tags"] = {STACK_TAG: queue.stack}
            clients.sqs.create_queue(**request)
        case SetQueueAttributes(queue=queue, changes=changes):
            attributes = {
                c.attribute: (redrive_policy(arns, queue) if c.attribute == "RedrivePolicy"
                              else queue.attributes.get(c.attribute, ""))
                for c in changes
            }
            # moto clears a queue's Policy on any SetQueueAttributes that omits it; AWS keeps
            # it. Re-sending the wanted policy is harmless on AWS and keeps moto converged.
            if queue.attributes.get("Policy") and "Policy" not in attributes:
                attributes["Policy"] = queue.attributes["Policy"]
            clients.sqs.set_queue_attributes(QueueUrl=_queue_url(clients, queue.name),
                                             Attributes=attributes)
        case CreateBus(bus=bus):
            clients.events.create_event_bus(Name=bus.name, Tags=_tags(bus.stack))
        case PutRule(rule=rule):
            request = {
                "Name": rule.name,
                "EventBusName": rule.bus,
                "EventPattern": rule.pattern,
                "State": rule.state.value,
                # Always sent: PutRule without a Description clears it.
                "Description": rule.description,
            }
            if action.creates and rule.stack:  # tags on an update would re-tag adopted rules
                request["Tags"] = _tags(rule.stack)
            clients.events.put_rule(**request)
        case PutTargets(bus=bus, rule=rule, targets=targets):
            for start in range(0, len(targets), 10):  # PutTargets takes at most 10
                batch = [target_request(arns, t) for t in targets[start:start + 10]]
                response = clients.events.put_targets(Rule=rule, EventBusName=bus, Targets=batch)
                _check_entries(response)
        case RemoveTargets(bus=bus, rule=rule, ids=ids):
            for start in range(0, len(ids), 100):
                response = clients.events.remove_targets(Rule=rule, EventBusName=bus,
                                                         Ids=list(ids[start:start + 100]))
                _check_entries(response)
        case DeleteRule(bus=bus, name=name):
            clients.events.delete_rule(Name=name, EventBusName=bus)
        case DeleteBus(name=name):
            clients.events.delete_event_bus(Name=name)
        case DeleteQueue(name=name):
            clients.sqs.delete_queue(QueueUrl=_queue_url(clients, name))
        case DeleteBucket(name=name):
            clients.s3.delete_bucket(Bucket=name)
        case Retain():
            pass
        case _:
            raise TypeError(f"no way to apply {type(action).__name__}")


def _queue_url(clients: AwsClients, name: str) -> str:
    return clients.sqs.get_queue_url(QueueName=name)["QueueUrl"]


def _check_entries(response: dict[str, Any]) -> None:
    failed = response.get("FailedEntries") or []
    if response.get("FailedEntryCount") or failed:
        reasons = "; ".join(f"{f.get('TargetId')}: {f.get('ErrorCode')} {f.get('ErrorMessage')}"
                            for f in failed)
        raise PartialFailure(reasons or "some entries failed")
