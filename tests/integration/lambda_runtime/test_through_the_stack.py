"""The compute plane inside a real stack: boto3 and plain HTTP against the Invoke API and
API Gateway, function logs through the CLI, EventBridge -> Lambda and SQS -> Lambda."""

from __future__ import annotations

import base64
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from devenv.health import wait_until
from tests.integration.conftest import Project, make_project_dir

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "functions"

STACK = """\
name: computeit
infra:
  postgres: false
  redis: false
queues:
  failures: {}
functions:
  echo:
    handler: handlers.echo
    code: functions/basic
    environment: {GREETING: hello}
  boom:
    handler: handlers.boom
    code: functions/basic
    on_failure: {queue: failures}
  web:
    handler: handlers.web
    code: functions/basic
api:
  stage: local
  routes:
    - {method: GET, path: "/hello/{name}", function: web}
    - {method: ANY, path: "/broken", function: boom}
"""


@pytest.fixture(scope="module")
def stack():
    root = make_project_dir()
    shutil.copytree(FIXTURES, root / "functions")
    project = Project(root, STACK)
    project.devenv("up")
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


def lambda_client(env):
    return boto3.client("lambda", endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"], region_name=env["AWS_REGION"],
                        aws_access_key_id="test", aws_secret_access_key="test")


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
    assert names == {"echo", "boom", "web"}
    assert client.get_function(FunctionName="echo")["Configuration"]["Handler"] == "handlers.echo"


def test_async_failure_reaches_the_on_failure_destination(stack):
    env = stack.env()
    lambda_client(env).invoke(FunctionName="boom", InvocationType="Event", Payload=b'{"destined": true}')
    sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                       aws_access_key_id="test", aws_secret_access_key="test")
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


def test_status_and_logs_show_the_compute_plane(stack):
    status = stack.devenv("status").stdout
    assert "lambda" in status and "API: http://127.0.0.1:" in status
    logs = stack.devenv("logs", "echo", "-n", "20").stdout
    assert "START RequestId:" in logs and "REPORT RequestId:" in logs
