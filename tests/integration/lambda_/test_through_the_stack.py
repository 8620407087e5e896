"""The compute plane inside a real stack: boto3 and plain HTTP against the Invoke API and
API Gateway, function logs through the CLI, EventBridge -> Lambda and SQS -> Lambda."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from devenv.health import wait_until
from tests.integration.lambda_.conftest import aws, lambda_client

pytestmark = pytest.mark.integration


def test_boto3_invoke_request_response_event_dry_run_and_errors(stack):
    client = lambda_client(stack.env())
    ok = client.invoke(FunctionName="echo", Payload=b'{"n": 1}', LogType="Tail")
    body = json.loads(ok["Payload"].read())
    assert ok["StatusCode"] == 200 and body["event"] == {"n": 1} and body["env"]["GREETING"] == "hello"
    assert "FunctionError" not in ok and ok["ExecutedVersion"] == "$LATEST"
    assert "REPORT RequestId:" in base64.b64decode(ok["LogResult"]).decode()

    failed = client.invoke(FunctionName="boom", Payload=b'{"n": 2}')
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"

    assert client.invoke(FunctionName="echo", InvocationType="DryRun")["StatusCode"] == 204
    assert client.invoke(FunctionName="echo", InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    with pytest.raises(ClientError) as missing:
        client.invoke(FunctionName="nope", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    names = {f["FunctionName"] for f in client.list_functions()["Functions"]}
    assert names == {"echo", "boom", "web", "batcher", "recorder", "single", "pacer"}
    assert client.get_function(FunctionName="echo")["Configuration"]["Handler"] == "handlers.echo"


def test_async_failure_reaches_the_on_failure_destination(stack):
    env = stack.env()
    lambda_client(env).invoke(FunctionName="boom", InvocationType="Event", Payload=b'{"destined": true}')
    sqs = aws(env, "sqs")
    url = sqs.get_queue_url(QueueName="failures")["QueueUrl"]
    found = []

    def arrived() -> bool:
        for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []):
            found.append(json.loads(message["Body"]))
        return any(f["requestPayload"] == {"destined": True} for f in found)

    assert wait_until(arrived, timeout=20, interval=0.1)
    record = next(f for f in found if f["requestPayload"] == {"destined": True})
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorType"] == "ValueError"


def test_api_gateway_routes_to_the_function(stack):
    api = stack.env()["DEVENV_API_URL"]
    with urllib.request.urlopen(f"{api}/hello/world?x=1&x=2") as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"hello": "world", "query": {"x": "2"},
                                               "multi": {"x": ["1", "2"]}, "path": "/hello/world"}
        assert response.headers["x-amzn-RequestId"]
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(f"{api}/nowhere")
    assert unknown.value.code == 403
    assert json.loads(unknown.value.read()) == {"message": "Missing Authentication Token"}
    with pytest.raises(urllib.error.HTTPError) as broken:
        urllib.request.urlopen(f"{api}/broken")
    assert broken.value.code == 502
    assert json.loads(broken.value.read()) == {"message": "Internal server error"}

    # each request is an AWS/ApiGateway sample, published by the lambda process (every 10 s)
    import datetime as dt

    cloudwatch = aws(stack.env(), "cloudwatch")

    def sums() -> dict[str, float]:
        now = dt.datetime.now(dt.timezone.utc)
        got = cloudwatch.get_metric_data(StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(minutes=1),
                                         MetricDataQueries=[{"Id": f"m{i}", "Label": m, "MetricStat": {
                                             "Metric": {"Namespace": "AWS/ApiGateway", "MetricName": m,
                                                        "Dimensions": [{"Name": "ApiName", "Value": "api"},
                                                                       {"Name": "Stage", "Value": "local"}]},
                                             "Period": 3600, "Stat": "Sum"}} for i, m in enumerate(("Count", "4XXError", "5XXError"))])
        return {r["Label"]: sum(r["Values"]) for r in got["MetricDataResults"]}

    assert wait_until(lambda: sums().get("Count", 0) >= 3, timeout=30), sums()
    found = sums()
    assert found["4XXError"] >= 1 and found["5XXError"] >= 1, found


def test_status_and_logs_show_the_compute_plane(stack):
    status = stack.devenv("status").stdout
    assert "lambda" in status and "API: http://127.0.0.1:" in status
    logs = stack.devenv("logs", "echo", "-n", "20").stdout
    assert "START RequestId:" in logs and "REPORT RequestId:" in logs


def test_sqs_event_source_partial_failure_and_dlq(stack):
    env = stack.env()
    sqs = aws(env, "sqs")
    jobs = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="jobs-dlq")["QueueUrl"]
    sent = {body: sqs.send_message(QueueUrl=jobs, MessageBody=body)["MessageId"] for body in ("ok-1", "fail", "ok-2")}
    log = stack.state / "logs" / "functions" / "batcher.log"
    dead = []

    def poison_in_dlq() -> bool:
        dead.extend(sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []))
        return any(m["Body"] == "fail" for m in dead)

    assert wait_until(poison_in_dlq, timeout=30, interval=0.2)
    # The batch-mates were deleted after the first delivery: handled exactly once.
    text = log.read_text()
    assert text.count("START RequestId:") >= 2  # the failed message was delivered again
    assert sqs.get_queue_attributes(QueueUrl=jobs, AttributeNames=["ApproximateNumberOfMessages",
                                    "ApproximateNumberOfMessagesNotVisible"])["Attributes"] == {
        "ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    assert [m["MessageId"] for m in dead if m["Body"] == "fail"] == [sent["fail"]]


def test_eventbridge_rule_invokes_the_function_target(stack):
    env = stack.env()
    aws(env, "events").put_events(Entries=[{"Source": "it.source", "DetailType": "thing.happened",
                                            "Detail": json.dumps({"marker": "eb-to-lambda"}),
                                            "EventBusName": "it-events"}])
    log = stack.state / "logs" / "functions" / "recorder.log"
    events = []

    def delivered() -> bool:
        if not log.exists():
            return False
        events[:] = [json.loads(line.split("EVENT ", 1)[1]) for line in log.read_text().splitlines()
                     if line.startswith("EVENT ")]
        return any(e.get("detail") == {"marker": "eb-to-lambda"} for e in events)

    assert wait_until(delivered, timeout=20, interval=0.1)
    event = next(e for e in events if e.get("detail") == {"marker": "eb-to-lambda"})
    assert event["source"] == "it.source" and event["detail-type"] == "thing.happened"
    assert set(event) >= {"version", "id", "detail-type", "source", "account", "time", "region", "resources",
                          "detail"}
