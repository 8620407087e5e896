"""The awslogs shipper's lean CloudWatch Logs client (devenv/aws/logs_client.py) against
devenv's moto: boto3's calls and answers, errors with the codes boto3 would read, one kept
connection, and the shipper's lines arriving through it."""

from __future__ import annotations

import time

import pytest

from devenv.aws.awslogs import Destination, LogShipper, logs_client_factory
from devenv.aws.logs_client import LogsClient
from devenv.aws.sender import error_code, refused
from devenv.errors import AwsErrorAnswer, EndpointUnreachable
from devenv.health import wait_until


def test_the_calls_do_what_boto3s_do(moto, aws):
    client = LogsClient(moto.url, moto.region)
    assert client.create_log_group(logGroupName="/aws/lambda/lean") == {}
    client.create_log_stream(logGroupName="/aws/lambda/lean", logStreamName="2026/12/07/[$LATEST]abc")
    now = int(time.time() * 1000)
    answer = client.put_log_events(logGroupName="/aws/lambda/lean", logStreamName="2026/12/07/[$LATEST]abc",
                                   logEvents=[{"timestamp": now, "message": "START RequestId: 1 Version: $LATEST"},
                                              {"timestamp": now + 1, "message": "ünïcode\ttab"}])
    assert "rejectedLogEventsInfo" not in answer
    got = aws.client("logs").get_log_events(logGroupName="/aws/lambda/lean",
                                            logStreamName="2026/12/07/[$LATEST]abc", startFromHead=True)
    assert [(e["timestamp"], e["message"]) for e in got["events"]] == [
        (now, "START RequestId: 1 Version: $LATEST"), (now + 1, "ünïcode\ttab")]
    client.close()


def test_error_answers_carry_the_codes_the_shipper_reads(moto):
    client = LogsClient(moto.url, moto.region)
    client.create_log_group(logGroupName="/ecs/twice")
    with pytest.raises(AwsErrorAnswer) as again:
        client.create_log_group(logGroupName="/ecs/twice")
    assert error_code(again.value) == "ResourceAlreadyExistsException" and again.value.status == 400
    with pytest.raises(AwsErrorAnswer) as missing:
        client.put_log_events(logGroupName="/ecs/none", logStreamName="s",
                              logEvents=[{"timestamp": int(time.time() * 1000), "message": "x"}])
    assert error_code(missing.value) == "ResourceNotFoundException" and not refused(missing.value)
    with pytest.raises(AwsErrorAnswer) as bad:
        client.create_log_group(logGroupName="x" * 600)  # over 512: refused, whatever the retries
    assert error_code(bad.value) == "InvalidParameterException" and refused(bad.value)
    assert "512" in bad.value.response["Error"]["Message"] and "512" in str(bad.value)
    client.close()


def test_nothing_listening_is_an_outage_not_a_refusal(nothing_listening):
    client = LogsClient(nothing_listening.url, nothing_listening.region)
    with pytest.raises(EndpointUnreachable) as down:
        client.create_log_group(logGroupName="/ecs/x")
    assert not refused(down.value)


def test_the_shipper_sends_through_it(moto, aws):
    shipper = LogShipper(logs_client_factory(moto.url), interval=0.05).start()
    destination = Destination("/ecs/shipped", "ecs/app/1", moto.region)
    try:
        for line in ("one", "two", "three"):
            shipper.add(destination, line)
        logs = aws.client("logs")

        def messages() -> list[str]:
            try:
                got = logs.get_log_events(logGroupName="/ecs/shipped", logStreamName="ecs/app/1", startFromHead=True)
            except logs.exceptions.ResourceNotFoundException:
                return []
            return [e["message"] for e in got["events"]]

        assert wait_until(lambda: messages() == ["one", "two", "three"], timeout=10), messages()
    finally:
        shipper.close()
    assert shipper.stats.shipped == 3 and shipper.stats.refused == 0
