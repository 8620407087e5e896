"""The managed plane on LocalStack and on ministack: devenv's deploy (queues with redrive, a bus rule with a
queue target, buckets) and the AWS behaviour the flows rely on (rule -> queue delivery,
redrive to the DLQ after maxReceiveCount, S3 objects).

Run against ``emulator: localstack`` on the Docker runtime (the image
localstack/localstack:4.14.0, the last release without an account; .ci/docker-setup builds
a stand-in here), against ``emulator: ministack`` there (ministackorg/ministack:1.5.33, a
stand-in likewise), and, as a contract test, against any LocalStack whose URL is given in
``DEVENV_LOCALSTACK_URL`` (one you run yourself, a newer one with a token, ...).
"""

from __future__ import annotations

import json
import os
import shutil

import boto3
import pytest

from devenv.aws import deploy as aws_deploy
from devenv.config.loader import load_project
from devenv.health import wait_until
from devenv.infra.containers import LOCALSTACK_VERSION, MINISTACK_VERSION
from tests.integration.conftest import Project, make_project_dir
from tests.support import missing

pytestmark = pytest.mark.docker

STACK = """\
name: dockls
runtime: docker
emulator: localstack
infra: {postgres: false, redis: false}
buckets:
  ls-bucket: {}
queues:
  work: {visibility_timeout: 1, dlq: work-dlq, max_receive_count: 2}
  work-dlq: {}
  created: {}
event_buses:
  ls-events:
    rules:
      created:
        pattern: {source: [ls.producer], detail-type: [thing.created]}
        targets:
          - queue: created
"""


IMAGES = {"localstack": f"localstack/localstack:{LOCALSTACK_VERSION}",
          "ministack": f"ministackorg/ministack:{MINISTACK_VERSION}"}


@pytest.fixture(scope="module", params=["localstack", "ministack", "given"])
def endpoint(request):
    """(emulator URL) of a LocalStack (or ministack) with the STACK's managed plane deployed by devenv."""
    if request.param == "given":
        url = os.environ.get("DEVENV_LOCALSTACK_URL")
        if not url:
            pytest.skip("no DEVENV_LOCALSTACK_URL given (the contract test against your own LocalStack)")
        root = make_project_dir()
        (root / "devenv.yaml").write_text(STACK)
        report = aws_deploy.deploy(load_project(root / "devenv.yaml").config,
                                   aws_deploy.AwsEndpoint(url, "us-east-1"))
        assert report is not None
        shutil.rmtree(root, ignore_errors=True)
        yield url
        return
    engine = request.getfixturevalue("engine")
    image = IMAGES[request.param]
    if not engine.images.list(name=image):
        message = f"no {image} image here (.ci/docker-setup builds a stand-in" + (
            " when pyenv has Python 3.13.0)" if request.param == "localstack" else ")")
        missing(message)
    project = Project(make_project_dir(), STACK.replace("emulator: localstack", f"emulator: {request.param}"))
    project.environ = {"DEVENV_EMULATOR": request.param}  # this one, whatever the suite's DEVENV_EMULATOR
    project.devenv("up", "--timeout", "300", timeout=400)
    yield project.env()["AWS_ENDPOINT_URL"]
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(project.root, ignore_errors=True)


def client(endpoint: str, service: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def queue_url(endpoint: str, name: str) -> str:
    return client(endpoint, "sqs").get_queue_url(QueueName=name)["QueueUrl"]


def test_deploy_made_queues_with_redrive_the_rule_and_the_bucket(endpoint):
    sqs = client(endpoint, "sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url(endpoint, "work"), AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":work-dlq") and int(redrive["maxReceiveCount"]) == 2
    assert attrs["VisibilityTimeout"] == "1"
    events = client(endpoint, "events")
    targets = events.list_targets_by_rule(Rule="created", EventBusName="ls-events")["Targets"]
    assert [t["Arn"].rsplit(":", 1)[1] for t in targets] == ["created"]
    assert "ls-bucket" in {b["Name"] for b in client(endpoint, "s3").list_buckets()["Buckets"]}


def test_an_event_matching_the_rule_lands_in_its_queue(endpoint):
    events, sqs = client(endpoint, "events"), client(endpoint, "sqs")
    result = events.put_events(Entries=[
        {"EventBusName": "ls-events", "Source": "ls.producer", "DetailType": "thing.created", "Detail": '{"n": 1}'},
        {"EventBusName": "ls-events", "Source": "someone.else", "DetailType": "thing.created", "Detail": '{"n": 2}'}])
    assert result["FailedEntryCount"] == 0
    got: list[dict] = []

    def received() -> bool:
        got.extend(sqs.receive_message(QueueUrl=queue_url(endpoint, "created"), WaitTimeSeconds=1,
                                       MaxNumberOfMessages=10).get("Messages", []))
        return bool(got)

    assert wait_until(received, timeout=20)
    bodies = [json.loads(m["Body"]) for m in got]
    assert [b["detail"] for b in bodies] == [{"n": 1}]  # the other source did not match


def test_a_message_received_too_often_moves_to_the_dlq(endpoint):
    sqs = client(endpoint, "sqs")
    work, dlq = queue_url(endpoint, "work"), queue_url(endpoint, "work-dlq")
    sqs.send_message(QueueUrl=work, MessageBody="poison")
    receives = []

    def in_dlq() -> bool:
        receives.extend(sqs.receive_message(QueueUrl=work, WaitTimeSeconds=1).get("Messages", []))
        moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0).get("Messages", [])
        return any(m["Body"] == "poison" for m in moved)

    assert wait_until(in_dlq, timeout=30, interval=0.5)
    assert len(receives) == 2  # maxReceiveCount, then the redrive


def test_s3_objects_round_trip(endpoint):
    s3 = client(endpoint, "s3")
    s3.put_object(Bucket="ls-bucket", Key="videos/a.json", Body=b'{"ok": true}')
    assert s3.get_object(Bucket="ls-bucket", Key="videos/a.json")["Body"].read() == b'{"ok": true}'
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="ls-bucket")["Contents"]] == ["videos/a.json"]


def test_the_ministack_image_runs_behind_devenvs_guard(endpoint, request):
    """ministack answers any Host and any Origin; its container runs devenv's guard in front
    (infra/emulator_guard.py), as natively. LocalStack's image runs unguarded (docs/emulators.md)."""
    if request.node.callspec.params["endpoint"] != "ministack":
        pytest.skip("only ministack's image runs behind devenv's guard on docker (docs/emulators.md)")
    import http.client
    from urllib.parse import urlsplit

    port = urlsplit(endpoint).port

    def status(headers: dict[str, str]) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/?Action=ListQueues", headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()

    assert status({"Host": f"evil.example:{port}"})[0] == 403
    code, body = status({"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"})
    assert code == 403 and b"cross-site" in body
    assert status({"Host": f"localhost:{port}"})[0] == 200
