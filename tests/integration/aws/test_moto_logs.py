"""CloudWatch Logs retention on devenv's moto (devenv/infra/moto_patches.py): a retention
policy deletes the events older than it from get-log-events and filter-log-events, as
CloudWatch expires them, and PutLogEvents refuses such events."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

DAY_MS = 86_400_000


def test_events_older_than_the_retention_disappear(moto, aws):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/ecs/kept")
    logs.create_log_stream(logGroupName="/ecs/kept", logStreamName="ecs/app/1")
    now = int(time.time() * 1000)
    events = [{"timestamp": now - 3 * DAY_MS, "message": "three days ago"},
              {"timestamp": now - 2 * DAY_MS, "message": "two days ago"},
              {"timestamp": now - 60_000, "message": "a minute ago"}]
    logs.put_log_events(logGroupName="/ecs/kept", logStreamName="ecs/app/1", logEvents=events)

    def messages() -> tuple[list[str], list[str]]:
        got = logs.get_log_events(logGroupName="/ecs/kept", logStreamName="ecs/app/1", startFromHead=True)
        found = logs.filter_log_events(logGroupName="/ecs/kept")
        return [e["message"] for e in got["events"]], [e["message"] for e in found["events"]]

    everything = [e["message"] for e in events]
    assert messages() == (everything, everything)  # no retention set: kept forever

    logs.put_retention_policy(logGroupName="/ecs/kept", retentionInDays=3)
    assert messages() == (everything[1:], everything[1:])  # three days and a bit: past 3 days
    logs.put_retention_policy(logGroupName="/ecs/kept", retentionInDays=1)
    assert messages() == (everything[2:], everything[2:])
    [group] = logs.describe_log_groups(logGroupNamePrefix="/ecs/kept")["logGroups"]
    assert group["retentionInDays"] == 1
    [stream] = logs.describe_log_streams(logGroupName="/ecs/kept")["logStreams"]
    assert stream["firstEventTimestamp"] == now - 60_000

    late = logs.put_log_events(logGroupName="/ecs/kept", logStreamName="ecs/app/1", logEvents=[
        {"timestamp": now - 20 * DAY_MS, "message": "older than CloudWatch takes"},
        {"timestamp": now - 2 * DAY_MS, "message": "older than the retention"},
        {"timestamp": now, "message": "now"}])
    assert late["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 0, "expiredLogEventEndIndex": 1}
    assert messages()[0] == ["a minute ago", "now"]

    logs.delete_retention_policy(logGroupName="/ecs/kept")  # what was deleted stays deleted
    assert messages()[0] == ["a minute ago", "now"]


def test_only_the_retention_periods_cloudwatch_offers_are_taken(moto, aws):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/ecs/odd")
    with pytest.raises(ClientError) as refused:
        logs.put_retention_policy(logGroupName="/ecs/odd", retentionInDays=2)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "retentionInDays" in refused.value.response["Error"]["Message"]
