"""Code written for LocalStack (its ``localstack-client`` package), run unchanged in a shell
that did ``eval "$(devenv env)"``: what the tests of every emulator share."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# As a LocalStack user writes it: no endpoint, no credentials, no region in the code.
SCRIPT = """\
import json, os, sys
import localstack_client.session as localstack

deployed, bucket, bus = sys.argv[1:4]
sqs = localstack.client("sqs")
sqs.get_queue_url(QueueName=deployed)  # the stack's own queue is there
url = sqs.create_queue(QueueName=f"lsclient-{os.getpid()}")["QueueUrl"]
sqs.send_message(QueueUrl=url, MessageBody="from localstack-client")
got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MaxNumberOfMessages=10)["Messages"]
sqs.delete_queue(QueueUrl=url)
s3 = localstack.resource("s3")
s3.Object(bucket, "from-localstack-client.txt").put(Body=b"hello")
body = s3.Object(bucket, "from-localstack-client.txt").get()["Body"].read().decode()
s3.Object(bucket, "from-localstack-client.txt").delete()
failed = localstack.client("events").put_events(Entries=[
    {"Source": "localstack.client", "DetailType": "probe", "Detail": "{}", "EventBusName": bus}])["FailedEntryCount"]
print(json.dumps({"endpoint": sqs.meta.endpoint_url, "received": [m["Body"] for m in got], "object": body,
                  "failed": failed}))
"""


def run_localstack_client(exported: dict[str, str], queue: str, bucket: str, bus: str,
                          *, drop: tuple[str, ...] = ()) -> dict:
    """Runs SCRIPT with the shell environment plus ``devenv env``'s values (less ``drop``),
    none of the test process's own AWS settings; returns what it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_", "EDGE_PORT"))}
    env.update({k: v for k, v in exported.items() if k not in drop and not k.startswith(drop)})
    done = subprocess.run([sys.executable, "-c", SCRIPT, queue, bucket, bus], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_runs_unchanged(exported: dict[str, str], queue: str, bucket: str, bus: str) -> None:
    """With everything `devenv env` exports, and again with only LOCALSTACK_HOST to find the
    stack (what awslocal and older clients fall back to), the code reaches the stack's emulator."""
    endpoint = exported["AWS_ENDPOINT_URL"]
    assert exported["LOCALSTACK_HOST"] == endpoint.removeprefix("http://")
    assert exported["EDGE_PORT"] == endpoint.rsplit(":", 1)[1]
    for drop in ((), ("AWS_ENDPOINT_URL",)):
        seen = run_localstack_client(exported, queue, bucket, bus, drop=drop)
        assert seen["endpoint"] == endpoint
        assert seen["received"] == ["from localstack-client"] and seen["object"] == "hello"
        assert seen["failed"] == 0
