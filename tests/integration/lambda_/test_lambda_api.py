"""The Lambda API as boto3 and the AWS CLI see it on a running stack, every answer checked
against botocore's model of the service (tests/support.py ShapeChecked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from devenv.health import wait_until
from tests.integration.lambda_.conftest import aws, lambda_client
from tests.support import ShapeChecked

pytestmark = pytest.mark.integration


def starts(stack, function: str) -> int:
    log = stack.state / "logs" / "functions" / f"{function}.log"
    return log.read_text().count("START RequestId:") if log.exists() else 0


def test_invoke_edge_cases_as_aws_answers_them(stack):
    client = lambda_client(stack.env())
    with ShapeChecked(client, allow_unmodeled=("RequestEntityTooLargeException",)) as checked:
        empty = client.invoke(FunctionName="echo")
        assert empty["StatusCode"] == 200 and "FunctionError" not in empty
        assert json.loads(empty["Payload"].read())["event"] == {}
        ran = starts(stack, "echo")

        with pytest.raises(ClientError) as not_json:
            client.invoke(FunctionName="echo", Payload=b"this is not json")
        error = not_json.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error["Error"]["Code"] == "InvalidRequestContentException"
        assert error["Error"]["Message"].startswith("Could not parse request body into json")

        sync = b'"' + b"x" * (7 * 1024 * 1024) + b'"'
        event = b'"' + b"x" * (300 * 1024) + b'"'
        for kind, payload, message in (
                ("RequestResponse", sync, "Request must be smaller than 6291456 bytes for the InvokeFunction operation"),
                ("Event", event, f"{len(event)} byte payload is too large for the Event invocation type "
                                 f"(limit 262144 bytes)")):
            with pytest.raises(ClientError) as large:
                client.invoke(FunctionName="echo", InvocationType=kind, Payload=payload)
            assert large.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
            assert large.value.response["Error"] == {"Code": "RequestEntityTooLargeException", "Message": message}
    assert checked.checked == 4
    assert starts(stack, "echo") == ran  # the refused invocations ran nothing


def test_get_function_list_functions_paginator_and_the_active_waiter(stack):
    client = lambda_client(stack.env())
    with ShapeChecked(client) as checked:
        got = client.get_function(FunctionName="echo")
        configuration = client.get_function_configuration(FunctionName="echo")
        pages = list(client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 3}))
        client.get_waiter("function_active_v2").wait(FunctionName="echo", WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    assert checked.checked == 2 + len(pages) + 1
    assert len(pages) == 3 and [len(p["Functions"]) for p in pages] == [3, 3, 1]
    assert sorted(f["FunctionName"] for p in pages for f in p["Functions"]) == [
        "batcher", "boom", "echo", "pacer", "recorder", "single", "web"]
    for field in ("CodeSha256", "CodeSize", "LastModified", "RevisionId", "LoggingConfig", "TracingConfig",
                  "EphemeralStorage", "SnapStart", "Description"):
        assert configuration[field] == got["Configuration"][field], field
    assert configuration["LoggingConfig"]["LogGroup"] == "/aws/lambda/echo"
    assert configuration["Environment"]["Variables"]["GREETING"] == "hello"
    assert client.get_function(FunctionName="single")["Concurrency"] == {"ReservedConcurrentExecutions": 1}


def test_the_aws_cli_waits_for_a_function_and_reads_it(stack):
    env = stack.env()
    cli = [sys.executable, "-m", "awscli", "--endpoint-url", env["AWS_ENDPOINT_URL_LAMBDA"], "lambda"]
    shell = {**os.environ, **env, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    waited = subprocess.run([*cli, "wait", "function-active-v2", "--function-name", "echo"],
                            env=shell, capture_output=True, text=True, timeout=60)
    assert waited.returncode == 0, waited.stderr
    shown = subprocess.run([*cli, "get-function-configuration", "--function-name", "echo", "--output", "json"],
                           env=shell, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/echo"}


def test_event_source_mappings_listed_read_paused_and_resumed(stack):
    env = stack.env()
    client = lambda_client(env)
    sqs = aws(env, "sqs")
    paced = sqs.get_queue_url(QueueName="paced")["QueueUrl"]
    with ShapeChecked(client) as checked:
        pages = list(client.get_paginator("list_event_source_mappings").paginate(
            FunctionName="pacer", PaginationConfig={"PageSize": 1}))
        (mapping,) = [m for p in pages for m in p["EventSourceMappings"]]
        assert mapping["EventSourceArn"].endswith(":paced") and mapping["State"] == "Enabled"
        everything = client.list_event_source_mappings()["EventSourceMappings"]
        assert {m["FunctionArn"].rsplit(":", 1)[-1] for m in everything} == {"pacer", "batcher"}
        by_queue = client.list_event_source_mappings(EventSourceArn=mapping["EventSourceArn"])
        assert [m["UUID"] for m in by_queue["EventSourceMappings"]] == [mapping["UUID"]]

        paused = client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False, BatchSize=3)
        assert (paused["State"], paused["BatchSize"]) == ("Disabling", 3)
        assert client.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Disabled"
        sqs.send_message(QueueUrl=paced, MessageBody="held while paused")
        assert wait_until(lambda: visible(sqs, paced) == 1, timeout=10, interval=0.1)
        ran = starts(stack, "pacer")

        resumed = client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
        assert resumed["State"] == "Enabling"
        assert wait_until(lambda: "held while paused" in pacer_log(stack), timeout=30, interval=0.2)
        assert starts(stack, "pacer") == ran + 1
        # the poller records the result once the invocation has returned, just after the log line
        assert wait_until(lambda: client.get_event_source_mapping(UUID=mapping["UUID"])["LastProcessingResult"]
                          == "OK", timeout=10, interval=0.1)
        settled = client.get_event_source_mapping(UUID=mapping["UUID"])
        assert (settled["State"], settled["BatchSize"]) == ("Enabled", 3)
        with pytest.raises(ClientError) as missing:
            client.get_event_source_mapping(UUID="00000000-0000-0000-0000-000000000000")
        assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert checked.checked >= 8


def visible(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def pacer_log(stack) -> str:
    log = stack.state / "logs" / "functions" / "pacer.log"
    return log.read_text() if log.exists() else ""


def test_reserved_concurrency_throttles_and_can_be_changed(stack):
    client = lambda_client(stack.env(), retries=False)
    with ShapeChecked(client) as checked:
        assert client.get_function_concurrency(FunctionName="single")["ReservedConcurrentExecutions"] == 1
        before = starts(stack, "single")
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(client.invoke, FunctionName="single", Payload=b'{"seconds": 3}')
            assert wait_until(lambda: starts(stack, "single") > before, timeout=20, interval=0.05)
            with pytest.raises(ClientError) as throttled:
                client.invoke(FunctionName="single", Payload=b'{"seconds": 0}')
            assert first.result()["StatusCode"] == 200
        error = throttled.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert error["Error"]["Code"] == "TooManyRequestsException"
        assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"

        assert client.put_function_concurrency(FunctionName="echo", ReservedConcurrentExecutions=0)[
            "ReservedConcurrentExecutions"] == 0
        with pytest.raises(ClientError) as stopped:
            client.invoke(FunctionName="echo", Payload=b"{}")
        assert stopped.value.response["Error"]["Code"] == "TooManyRequestsException"
        client.delete_function_concurrency(FunctionName="echo")
        assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(FunctionName="echo")
        assert client.invoke(FunctionName="echo", Payload=b"{}")["StatusCode"] == 200
    assert checked.checked == 8


def test_a_throttled_mapping_leaves_its_messages_in_the_queue_and_backs_off(stack):
    env = stack.env()
    client = lambda_client(env)
    sqs = aws(env, "sqs")
    paced = sqs.get_queue_url(QueueName="paced")["QueueUrl"]
    compute_log = stack.state / "logs" / "lambda.log"
    refused_before = compute_log.read_text().count("sqs paced -> pacer: invoke refused")
    client.put_function_concurrency(FunctionName="pacer", ReservedConcurrentExecutions=0)
    try:
        ran = starts(stack, "pacer")
        sqs.send_message(QueueUrl=paced, MessageBody="throttled at first")
        assert wait_until(lambda: compute_log.read_text().count("sqs paced -> pacer: invoke refused") > refused_before,
                          timeout=30, interval=0.2)
        assert starts(stack, "pacer") == ran
        assert "PROBLEM" not in client.list_event_source_mappings(FunctionName="pacer")[
            "EventSourceMappings"][0]["LastProcessingResult"]
    finally:
        client.delete_function_concurrency(FunctionName="pacer")
    assert wait_until(lambda: "throttled at first" in pacer_log(stack), timeout=30, interval=0.2)


def test_an_event_reaching_a_worker_through_sqs_parses_with_powertools(stack):
    from aws_lambda_powertools.utilities.parser import parse
    from aws_lambda_powertools.utilities.parser.envelopes import SqsEnvelope
    from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

    env = stack.env()
    sqs = aws(env, "sqs")
    aws(env, "events").put_events(Entries=[{"Source": "it.queued", "DetailType": "thing.queued",
                                            "Detail": json.dumps({"marker": "through-sqs"}),
                                            "EventBusName": "it-events"}])
    # what a plain ReceiveMessage sees
    inbox = sqs.get_queue_url(QueueName="inbox")["QueueUrl"]
    bodies: list[dict] = []

    def received() -> bool:
        bodies.extend(json.loads(m["Body"]) for m in sqs.receive_message(
            QueueUrl=inbox, WaitTimeSeconds=1).get("Messages", []))
        return any(b.get("detail") == {"marker": "through-sqs"} for b in bodies)

    assert wait_until(received, timeout=20, interval=0.1)
    body = next(b for b in bodies if b.get("detail") == {"marker": "through-sqs"})
    # every key AWS sends (in JSON their order means nothing, and each emulator has its own)
    assert sorted(body) == sorted(["version", "id", "detail-type", "source", "account", "time", "region",
                                   "resources", "detail"])
    # what a worker behind an event source mapping gets: the SQS event, parsed as Nedlia's workers would
    assert wait_until(lambda: "through-sqs" in pacer_log(stack), timeout=30, interval=0.2)
    line = next(line for line in pacer_log(stack).splitlines() if line.startswith("EVENT ") and "through-sqs" in line)
    records = [r for r in json.loads(line[len("EVENT "):])["Records"] if "through-sqs" in r["body"]]
    (event,) = parse(event={"Records": records}, model=EventBridgeModel, envelope=SqsEnvelope)
    assert (event.account, event.source, event.detail_type, event.detail) == (
        body["account"], "it.queued", "thing.queued", {"marker": "through-sqs"})
    assert event.region == env["AWS_REGION"]
