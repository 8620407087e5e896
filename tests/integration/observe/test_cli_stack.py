"""`devenv queues`, `devenv dlq ...` and `devenv events tail` against a running stack (emulator only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import boto3
import pytest

from devenv.health import wait_until
from tests.integration.conftest import NO_TRACE_PAST_THE_BUS, not_on

HEADER = "Root=1-6b0c0002-aabbccddeeff001122334455;Sampled=1"


@pytest.fixture(scope="module")
def clients(emulator_stack):
    env = emulator_stack.env()
    kwargs = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                  aws_access_key_id="test", aws_secret_access_key="test")
    return boto3.client("sqs", **kwargs), boto3.client("events", **kwargs)


def _url(sqs, name: str) -> str:
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


def test_queues_dlq_show_and_redrive_through_the_cli(emulator_stack, clients):
    sqs, _ = clients
    dlq = _url(sqs, "work-dlq")
    for n in range(2):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"dead-{n}", MessageSystemAttributes={
            "AWSTraceHeader": {"DataType": "String", "StringValue": HEADER}})
    table = emulator_stack.devenv("queues").stdout
    work_line = next(line for line in table.splitlines() if line.split()[:1] == ["work"])  # piped: plain rows
    assert "work-dlq (after 1)" in work_line and work_line.endswith(" 2")
    assert "DLQ of work" in emulator_stack.devenv("dlq", "list").stdout
    shown = emulator_stack.devenv("dlq", "show", "work-dlq").stdout
    assert "dead-0" in shown and "dead-1" in shown and "trace 1-6b0c0002-aabbccddeeff001122334455" in shown
    moved = emulator_stack.devenv("dlq", "redrive", "work-dlq").stdout
    assert "moved 2 message(s) from work-dlq to work" in moved
    bodies = []
    assert wait_until(lambda: bool(bodies.extend(m["Body"] for m in sqs.receive_message(
        QueueUrl=_url(sqs, "work"), MaxNumberOfMessages=10).get("Messages", []))) or len(bodies) >= 2,
        timeout=10, interval=0.05)
    assert sorted(bodies) == ["dead-0", "dead-1"]


def test_dlq_show_of_an_unknown_queue_names_the_queues(emulator_stack):
    result = emulator_stack.devenv("dlq", "show", "nope", check=False)
    assert result.returncode == 1 and "no queue 'nope'" in result.stderr and "work-dlq" in result.stderr


def test_events_tail_prints_events_as_they_pass_and_cleans_up(emulator_stack, clients):
    sqs, events = clients
    tail = subprocess.Popen([sys.executable, "-m", "devenv", "events", "tail", "--count", "1", "--timeout", "60",
                             "--pattern", '{"detail-type": ["wanted"]}', "--file", str(emulator_stack.file)],
                            cwd=emulator_stack.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    try:
        def tail_ready() -> bool:
            return bool(events.list_rules(EventBusName="obs-events", NamePrefix="devenv-tail-")["Rules"])

        assert wait_until(tail_ready, timeout=30, interval=0.1, abort=lambda: tail.poll() is not None)
        for detail_type in ("unwanted", "wanted"):
            events.put_events(Entries=[{"Source": "obs.producer", "DetailType": detail_type, "EventBusName":
                                        "obs-events", "Detail": json.dumps({"kind": detail_type}),
                                        "TraceHeader": HEADER}])
        stdout, stderr = tail.communicate(timeout=60)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert tail.returncode == 0, stderr
    lines = stdout.splitlines()
    assert len(lines) == 2 and "obs-events obs.producer wanted" in lines[0]
    assert '"kind":"wanted"' in lines[1]
    assert not events.list_rules(EventBusName="obs-events", NamePrefix="devenv-tail-")["Rules"]
    assert not [u for u in sqs.list_queues().get("QueueUrls", []) if "devenv-tail-" in u]
    not_on(emulator_stack, NO_TRACE_PAST_THE_BUS)  # the tail reads the event's trace from its queue message
    assert "trace=1-6b0c0002-aabbccddeeff001122334455" in lines[0]


def _start_tail(project, events) -> subprocess.Popen:
    """A `devenv events tail` on obs-events, once its rule exists (with its pid in the name)."""
    before = {r["Name"] for r in events.list_rules(EventBusName="obs-events", NamePrefix="devenv-tail-")["Rules"]}
    tail = subprocess.Popen([sys.executable, "-m", "devenv", "events", "tail", "--file", str(project.file)],
                            cwd=project.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})

    def ready() -> bool:
        names = {r["Name"] for r in events.list_rules(EventBusName="obs-events", NamePrefix="devenv-tail-")["Rules"]}
        return any(n.startswith(f"devenv-tail-{tail.pid}-") for n in names - before)

    assert wait_until(ready, timeout=30, interval=0.1, abort=lambda: tail.poll() is not None), tail.stderr
    return tail


def _leftovers(sqs, events, pid: int) -> list[str]:
    mine = f"devenv-tail-{pid}-"
    return ([r["Name"] for r in events.list_rules(EventBusName="obs-events", NamePrefix=mine)["Rules"]]
            + [u for u in sqs.list_queues(QueueNamePrefix=mine).get("QueueUrls", [])])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_events_tail_stopped_by_a_signal_cleans_up(emulator_stack, clients, sig):
    sqs, events = clients
    tail = _start_tail(emulator_stack, events)
    tail.send_signal(sig)
    try:
        tail.wait(timeout=30)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert _leftovers(sqs, events, tail.pid) == []


def test_up_sweeps_what_a_killed_tail_left_and_spares_a_running_one(emulator_stack, clients):
    sqs, events = clients
    killed = _start_tail(emulator_stack, events)
    killed.kill()
    killed.wait(timeout=10)
    assert len(_leftovers(sqs, events, killed.pid)) == 2  # its rule and its queue, left behind
    running = _start_tail(emulator_stack, events)
    try:
        result = emulator_stack.devenv("up")
        assert _leftovers(sqs, events, killed.pid) == []
        assert "left by a `devenv events tail` that was killed" in result.stdout + result.stderr
        assert len(_leftovers(sqs, events, running.pid)) == 2
    finally:
        running.terminate()
        running.wait(timeout=30)
    assert _leftovers(sqs, events, running.pid) == []


def test_dashboards_show_the_running_stack(emulator_stack):
    frame = emulator_stack.devenv("dashboard", "--once").stdout
    assert "obs-it — running, ready" in frame
    assert "emulator" in frame and "ready" in frame
    assert "DLQ of work" in frame  # the queues table

    import urllib.request

    from devenv.config.loader import load_project
    from devenv.observe.dashboard import LiveSources
    from devenv.observe.webapp import DashboardServer
    from devenv.stack import Stack

    server = DashboardServer(LiveSources(Stack(load_project(emulator_stack.file))))
    url = server.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/snapshot", timeout=30) as response:
            snap = json.loads(response.read())
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b'<svg id="graph"' in response.read()
    finally:
        server.stop()
    assert snap["running"] and snap["phase"] == "ready"
    assert {c["name"]: c["state"] for c in snap["components"]} == {"emulator": "ready"}
    assert {q["name"] for q in snap["queues"]} == {"work", "work-dlq"}
    assert {n["id"] for n in snap["graph"]["nodes"]} == {"bus:obs-events", "queue:work", "queue:work-dlq"}
