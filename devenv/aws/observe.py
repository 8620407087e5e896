"""Read the managed plane the emulator holds, through boto3.

The ``*_from_aws`` functions are pure translations of AWS responses into ``resources``
dataclasses; ``observe_plane`` makes the calls. Errors propagate as botocore exceptions;
``api.BotoPlaneApi`` turns them into DeployError.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping

from devenv.aws.endpoint import AwsClients
from devenv.aws.resources import (
    DEFAULT_EVENT_AGE,
    DEFAULT_RETRY_ATTEMPTS,
    QUEUE_ATTRIBUTES,
    STACK_TAG,
    Bucket,
    Bus,
    ManagedPlane,
    Queue,
    Redrive,
    Rule,
    RuleState,
    Target,
    TargetKind,
    name_from_arn,
)

# ---------------------------------------------------------------- pure translations


def queue_from_aws(name: str, attributes: Mapping[str, str], tags: Mapping[str, str]) -> Queue:
    """A queue from get_queue_attributes(All) and list_queue_tags."""
    redrive = None
    if raw := attributes.get("RedrivePolicy"):
        policy = json.loads(raw)
        redrive = Redrive(name_from_arn(policy["deadLetterTargetArn"]), int(policy["maxReceiveCount"]))
    kept = {k: str(v) for k, v in attributes.items() if k in QUEUE_ATTRIBUTES and v != ""}
    return Queue(name=name, attributes=kept, redrive=redrive, stack=tags.get(STACK_TAG))


def rule_from_aws(entry: Mapping[str, Any], tags: Mapping[str, str]) -> Rule:
    """A rule from one list_rules entry and its tags."""
    return Rule(
        bus=entry.get("EventBusName", "default"),
        name=entry["Name"],
        pattern=entry.get("EventPattern", ""),
        state=RuleState.ENABLED if entry.get("State") == "ENABLED" else RuleState.DISABLED,
        description=entry.get("Description", "") or "",
        stack=tags.get(STACK_TAG),
    )


def target_from_aws(bus: str, rule: str, entry: Mapping[str, Any]) -> Target:
    """A target from one list_targets_by_rule entry; unknown ARNs become TargetKind.OTHER."""
    arn = entry["Arn"]
    parts = arn.split(":")
    if len(parts) == 6 and parts[2] == "sqs":
        kind, name = TargetKind.QUEUE, parts[5]
    elif len(parts) >= 7 and parts[2] == "lambda" and parts[5] == "function":
        kind, name = TargetKind.FUNCTION, parts[6]
    else:
        kind, name = TargetKind.OTHER, arn
    retry = entry.get("RetryPolicy") or {}
    dlq = (entry.get("DeadLetterConfig") or {}).get("Arn")
    return Target(
        bus=bus,
        rule=rule,
        id=entry["Id"],
        kind=kind,
        name=name,
        dead_letter_queue=name_from_arn(dlq) if dlq else None,
        maximum_retry_attempts=int(retry.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS)),
        maximum_event_age=int(retry.get("MaximumEventAgeInSeconds", DEFAULT_EVENT_AGE)),
    )


def tags_from_aws(tag_list: list[Mapping[str, str]]) -> dict[str, str]:
    """EventBridge and S3 tags ([{Key, Value}]) as a mapping."""
    return {t["Key"]: t["Value"] for t in tag_list}


# ---------------------------------------------------------------- the calls


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def observe_queues(sqs: Any) -> tuple[Queue, ...]:
    from botocore.exceptions import ClientError

    queues = []
    for url in _queue_urls(sqs):
        name = url.rstrip("/").rsplit("/", 1)[-1]
        try:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        except ClientError as exc:
            if "NonExistentQueue" in _error_code(exc) or "QueueDoesNotExist" in _error_code(exc):
                continue  # deleted while we looked
            raise
        queues.append(queue_from_aws(name, attributes, tags))
    return tuple(sorted(queues, key=lambda q: q.name))


def _queue_urls(sqs: Any) -> Iterator[str]:
    for page in sqs.get_paginator("list_queues").paginate(PaginationConfig={"PageSize": 1000}):
        yield from page.get("QueueUrls", [])


def observe_events(events: Any) -> tuple[tuple[Bus, ...], tuple[Rule, ...], tuple[Target, ...]]:
    buses, rules, targets = [], [], []
    for entry in _paged(events.list_event_buses, "EventBuses"):
        name = entry["Name"]
        buses.append(Bus(name, stack=_events_tags(events, entry["Arn"]).get(STACK_TAG)))
        for rule_entry in _paged(events.list_rules, "Rules", EventBusName=name):
            rule = rule_from_aws({**rule_entry, "EventBusName": name},
                                 _events_tags(events, rule_entry["Arn"]))
            rules.append(rule)
            for target_entry in _paged(events.list_targets_by_rule, "Targets",
                                       Rule=rule.name, EventBusName=name):
                targets.append(target_from_aws(name, rule.name, target_entry))
    return (
        tuple(sorted(buses, key=lambda b: b.name)),
        tuple(sorted(rules, key=lambda r: r.key)),
        tuple(sorted(targets, key=lambda t: (t.bus, t.rule, t.id))),
    )


def _events_tags(events: Any, arn: str) -> dict[str, str]:
    return tags_from_aws(events.list_tags_for_resource(ResourceARN=arn).get("Tags", []))


def _paged(call: Any, key: str, **kwargs: Any) -> Iterator[Mapping[str, Any]]:
    """Every item of a NextToken-paged EventBridge list call."""
    token = None
    while True:
        page = call(**kwargs, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return


def observe_buckets(s3: Any) -> tuple[Bucket, ...]:
    """Every bucket with its tag and versioning; emptiness is looked up only for buckets
    tagged by some devenv stack, the only ones a plan may want to delete."""
    from botocore.exceptions import ClientError

    buckets = []
    for entry in s3.list_buckets().get("Buckets", []):
        name = entry["Name"]
        try:
            tags = tags_from_aws(s3.get_bucket_tagging(Bucket=name).get("TagSet", []))
        except ClientError as exc:
            if _error_code(exc) != "NoSuchTagSet":
                raise
            tags = {}
        versioning = s3.get_bucket_versioning(Bucket=name).get("Status") == "Enabled"
        empty = True
        if STACK_TAG in tags:
            listing = s3.list_object_versions(Bucket=name, MaxKeys=1)
            empty = not (listing.get("Versions") or listing.get("DeleteMarkers"))
        buckets.append(Bucket(name, versioning=versioning, stack=tags.get(STACK_TAG), empty=empty))
    return tuple(sorted(buckets, key=lambda b: b.name))


def observe_plane(clients: AwsClients) -> ManagedPlane:
    """Everything the emulator holds of the managed plane, in this endpoint's region.

    S3, SQS and EventBridge are read concurrently (three threads): each family is a chain
    of small calls, and overlapping them cut a warm no-op observe by ~20% on moto (both
    sides are CPU-bound Python, so not more).
    """
    from concurrent.futures import ThreadPoolExecutor

    s3, sqs, events = clients.s3, clients.sqs, clients.events  # built here, one after the other
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="devenv-observe") as pool:
        buckets = pool.submit(observe_buckets, s3)
        queues = pool.submit(observe_queues, sqs)
        buses, rules, targets = pool.submit(observe_events, events).result()
        return ManagedPlane(
            buckets=buckets.result(),
            queues=queues.result(),
            buses=buses,
            rules=rules,
            targets=targets,
        )
