"""The managed plane on moto is durable (native runtime): queued, in-flight and dead-lettered
messages and S3 objects survive a kill -9 of the emulator, a kill -9 of the supervisor and
`down`/`up`; `down --volumes` wipes them."""

from __future__ import annotations

import os
import signal

import pytest

from devenv.health import wait_until
from devenv.runtime.process import is_alive

from .conftest import NOT_DURABLE, not_on
from .test_stack import clients, record_of

pytestmark = pytest.mark.integration


def _emulator(project):
    return record_of(project).component("emulator")


def _plane(project) -> dict:
    """What the plane holds now, read without changing it (nothing is received)."""
    sqs, events, s3 = clients(project.env())
    counts = {}
    for name in ("work", "work-dlq"):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        counts[name] = (int(attributes["ApproximateNumberOfMessages"]),
                        int(attributes["ApproximateNumberOfMessagesNotVisible"]))
    listing = s3.list_objects_v2(Bucket="itest-bucket").get("Contents", [])
    objects = {o["Key"]: s3.get_object(Bucket="itest-bucket", Key=o["Key"])["Body"].read() for o in listing}
    rules = events.list_rules(EventBusName="itest-events")["Rules"]
    targets = {r["Name"]: [t["Id"] for t in events.list_targets_by_rule(Rule=r["Name"], EventBusName="itest-events")
                           ["Targets"]] for r in rules}
    return {"queues": counts, "objects": objects, "targets": targets}


def test_messages_and_objects_survive_kills_and_down_up_but_not_down_volumes(project):
    not_on(project, NOT_DURABLE)
    project.devenv("up")
    sqs, _, s3 = clients(project.env())
    work = sqs.get_queue_url(QueueName="work")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="work-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=work, MessageBody="in-flight")
    in_flight = sqs.receive_message(QueueUrl=work, VisibilityTimeout=900)["Messages"][0]
    sqs.send_message(QueueUrl=work, MessageBody="queued")
    sqs.send_message(QueueUrl=dlq, MessageBody="poison")
    s3.put_object(Bucket="itest-bucket", Key="report.csv", Body=b"a,b\n1,2\n")
    expected = {"queues": {"work": (1, 1), "work-dlq": (1, 0)}, "objects": {"report.csv": b"a,b\n1,2\n"},
                "targets": _plane(project)["targets"]}
    assert _plane(project) == expected

    # kill -9 of the emulator: the supervisor restarts it, with everything
    emulator = _emulator(project)
    os.kill(emulator.pid, signal.SIGKILL)
    assert wait_until(lambda: _emulator(project).restarts >= 1 and _emulator(project).state.value == "ready",
                      timeout=60), "the emulator was not restarted"
    assert _plane(project) == expected, "after a kill -9 of the emulator"

    # kill -9 of the supervisor (its children die with it), then up
    supervisor = record_of(project).supervisor_pid
    children = [(c.pid, c.pid_start) for c in record_of(project).components if c.pid]
    os.kill(supervisor, signal.SIGKILL)
    assert wait_until(lambda: not any(is_alive(p, s) for p, s in children), timeout=15)
    project.devenv("up")
    assert _plane(project) == expected, "after a kill -9 of the supervisor and up"

    # down, up
    project.devenv("down")
    project.devenv("up")
    assert _plane(project) == expected, "after down and up"
    # the in-flight message kept its receipt handle and receive count: its consumer can still settle it
    sqs, _, _ = clients(project.env())
    sqs.change_message_visibility(QueueUrl=work, ReceiptHandle=in_flight["ReceiptHandle"], VisibilityTimeout=0)
    got = sqs.receive_message(QueueUrl=work, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"])
    counts = {m["Body"]: m["Attributes"]["ApproximateReceiveCount"] for m in got["Messages"]}
    assert counts == {"in-flight": "2", "queued": "1"}

    # down --volumes wipes it
    project.devenv("down", "--volumes")
    project.devenv("up")
    assert _plane(project) == {"queues": {"work": (0, 0), "work-dlq": (0, 0)}, "objects": {},
                               "targets": expected["targets"]}
