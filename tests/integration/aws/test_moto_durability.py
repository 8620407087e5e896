"""moto's state outlives its process: devenv's launcher with ``--state-dir``, killed with
SIGKILL and started again on the same folder, serves the same queues, messages (queued, in
flight, in a DLQ), buckets, objects, buses, rules and targets, from its first request on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from devenv.health import wait_until

from tests.integration.aws.conftest import free_port

ACCOUNT = "123456789012"
IN_FLIGHT = 15  # seconds: the visibility timeout of the message in flight at the kill


class Launcher:
    """devenv's moto launcher on a fixed port and state folder, started and killed at will."""

    def __init__(self, state: Path):
        self.state = state
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="devenv-moto-durable-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devenv.infra.moto_server", "-H", "127.0.0.1", "-p", str(self.port),
                 "--state-dir", str(self.state)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert wait_until(self._answers, timeout=30, abort=lambda: self.process.poll() is not None), self.tail()

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))


@pytest.fixture
def launcher(tmp_path):
    server = Launcher(tmp_path / "state")
    server.start()
    yield server
    if server.process and server.process.poll() is None:
        server.kill()
    server.log.unlink(missing_ok=True)


def _body_of(messages: list[dict]) -> list[str]:
    return sorted(m["Body"] for m in messages)


def test_the_managed_plane_survives_a_kill(launcher):
    sqs, s3, events = launcher.client("sqs"), launcher.client("s3"), launcher.client("events")
    dlq = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    dlq_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders-dlq"
    queue = sqs.create_queue(QueueName="orders", Attributes={
        "VisibilityTimeout": "30", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
    events.create_event_bus(Name="nedlia")
    events.put_rule(Name="placed", EventBusName="nedlia", EventPattern=json.dumps({"source": ["placement"]}))
    events.put_targets(Rule="placed", EventBusName="nedlia",
                       Targets=[{"Id": "orders", "Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"}])
    s3.create_bucket(Bucket="uploads")

    # a poison message: received 3 times (maxReceiveCount), moved to the DLQ on the next receive
    sqs.send_message(QueueUrl=queue, MessageBody="poison")
    for _ in range(3):
        assert _body_of(sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"]) == ["poison"]
    assert sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0).get("Messages") is None  # moved
    # queued, with attributes
    sent = sqs.send_message(QueueUrl=queue, MessageBody="queued", MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "created"}, "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
    # in flight at the kill: visible again IN_FLIGHT s after its receive, receive count kept
    sqs.send_message(QueueUrl=queue, MessageBody="in-flight")
    invisible_until = time.monotonic() + IN_FLIGHT  # at least; at most this plus the receive's time
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=IN_FLIGHT,
                                   AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
    assert _body_of(received) == ["in-flight", "queued"]
    handles = {m["Body"]: m["ReceiptHandle"] for m in received}
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=handles["queued"], VisibilityTimeout=0)
    # deleted: must not come back
    sqs.send_message(QueueUrl=queue, MessageBody="done")
    done = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    for m in done:
        if m["Body"] == "done":
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        elif m["Body"] == "queued":  # again (visibility 0 above): give it back at once
            sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    events.put_events(Entries=[{"EventBusName": "nedlia", "Source": "placement", "DetailType": "created", "Detail": "{}"}])
    s3.put_object(Bucket="uploads", Key="a/b.json", Body=b'{"x": 1}', ContentType="application/json",
                  Metadata={"owner": "nedlia"}, Tagging="team=ads")
    s3.put_object(Bucket="uploads", Key="gone", Body=b"x")
    s3.delete_object(Bucket="uploads", Key="gone")
    s3.copy_object(Bucket="uploads", Key="copy.json", CopySource={"Bucket": "uploads", "Key": "a/b.json"})
    before = s3.head_object(Bucket="uploads", Key="a/b.json")

    launcher.kill()
    launcher.start()
    assert "state restored" in launcher.tail()

    sqs, s3, events = launcher.client("sqs"), launcher.client("s3"), launcher.client("events")
    # first, while the in-flight message is still invisible: "queued" and the event EventBridge
    # delivered are visible, "in-flight" is not
    now = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=30,
                              AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
    assert time.monotonic() < invisible_until, "too slow to see the in-flight message still invisible"
    by_body = {m["Body"]: m for m in now}
    assert "in-flight" not in by_body and "done" not in by_body
    assert "queued" in by_body and len(now) == 2  # and the event
    queued = by_body["queued"]
    assert queued["MessageId"] == sent["MessageId"]
    assert queued["MessageAttributes"]["kind"]["StringValue"] == "created"
    assert queued["MessageAttributes"]["raw"]["BinaryValue"] == b"\x00\x01"
    assert queued["Attributes"]["ApproximateReceiveCount"] == "3"
    event = next(m for m in now if m["Body"] != "queued")
    assert json.loads(event["Body"])["source"] == "placement"
    assert sorted(sqs.list_queues()["QueueUrls"]) == sorted([dlq, queue])
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == dlq_arn
    in_dlq = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert _body_of(in_dlq) == ["poison"]
    # the in-flight one comes back when its visibility timeout ends
    back: list[dict] = []

    def in_flight_back() -> bool:
        back.extend(sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []))
        return bool(back)

    assert wait_until(in_flight_back, timeout=IN_FLIGHT + 15)
    assert time.monotonic() >= invisible_until - 1  # moto counts whole seconds
    assert _body_of(back) == ["in-flight"]
    again = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert again["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "3"
    # S3
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="uploads")["Contents"]) == ["a/b.json", "copy.json"]
    obj = s3.get_object(Bucket="uploads", Key="a/b.json")
    assert obj["Body"].read() == b'{"x": 1}'
    assert obj["ContentType"] == "application/json" and obj["Metadata"] == before["Metadata"] != {}
    assert obj["ETag"] == before["ETag"] and obj["LastModified"] == before["LastModified"]
    assert s3.get_object_tagging(Bucket="uploads", Key="a/b.json")["TagSet"] == [{"Key": "team", "Value": "ads"}]
    assert s3.get_object(Bucket="uploads", Key="copy.json")["Body"].read() == b'{"x": 1}'
    # the bus with its rule and target, from the first request on
    targets = events.list_targets_by_rule(Rule="placed", EventBusName="nedlia")["Targets"]
    assert [t["Id"] for t in targets] == ["orders"]


def test_a_torn_journal_tail_is_dropped_with_a_warning(launcher):
    sqs = launcher.client("sqs")
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{n}")
    launcher.kill()
    journal = max((launcher.state / "journal").glob("journal-*.jsonl"), key=lambda p: int(p.stem.split("-")[1]))
    with journal.open("ab") as out:
        out.write(b'1234abcd {"t":"msg","q":["1234')  # a record cut short by the kill
    launcher.start()
    assert "incomplete last record" in launcher.tail()
    got = launcher.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert _body_of(got) == ["m0", "m1", "m2"]


def test_reset_wipes_the_durable_state(launcher):
    sqs = launcher.client("sqs")
    sqs.create_queue(QueueName="q")
    request = urllib.request.Request(f"{launcher.url}/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=5).read()
    launcher.kill()
    launcher.start()
    assert launcher.client("sqs").list_queues().get("QueueUrls") is None


def test_the_journal_is_compacted_at_start(launcher):
    sqs = launcher.client("sqs")
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    for n in range(20):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{n}")
    for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    launcher.kill()
    launcher.start()
    files = sorted(os.listdir(launcher.state / "journal"))
    assert len([f for f in files if f.startswith("snapshot-")]) == 1
    snapshot = next(launcher.state.joinpath("journal").glob("snapshot-*.jsonl")).read_text().splitlines()
    assert len(snapshot) == 1 + 10  # the queue's creation and the 10 messages left


def test_concurrent_receivers_never_share_a_message(launcher):
    # An event source polls with several receivers at once. moto checks a message is visible,
    # then marks it received; the journal's write must not let a second receiver in between.
    import collections
    import threading

    sqs = launcher.client("sqs")
    url = sqs.create_queue(QueueName="shared", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    total = 60
    for start in range(0, total, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(i)}
                                                       for i in range(start, start + 10)])
    received: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def poll() -> None:
        client = launcher.client("sqs")
        while True:
            messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=3).get("Messages", [])
            if not messages:
                return
            with lock:
                received.update(m["Body"] for m in messages)

    pollers = [threading.Thread(target=poll) for _ in range(8)]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        poller.join(timeout=60)
    assert len(received) == total
    assert {body: n for body, n in received.items() if n > 1} == {}
