"""The native runtime for real: up, status, env, idempotent re-up, down, data kept,
supervisor killed with -9 then recovery, a killed Postgres shown clearly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading

import boto3
import psycopg
import pytest
import redis

from devenv.health import wait_until
from devenv.runtime.process import is_alive
from devenv.runtime.record import read_record
from tests.integration.emulators.localstack_clients import assert_runs_unchanged

pytestmark = pytest.mark.integration


def clients(env: dict[str, str]):
    kwargs = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                  aws_access_key_id="test", aws_secret_access_key="test")
    return boto3.client("sqs", **kwargs), boto3.client("events", **kwargs), boto3.client("s3", **kwargs)


def record_of(project):
    return read_record(project.state / "run" / "stack.json")


def component_pids(project) -> dict[str, tuple[int, int]]:
    return {c.name: (c.pid, c.pid_start) for c in record_of(project).components if c.pid}


# ---------------------------------------------------------------- a shared running stack


def test_status_lists_every_component_ready(running):
    result = running.devenv("status")
    for name in ("postgres", "redis", "emulator"):
        line = next(l for l in result.stdout.splitlines() if l.strip().startswith(name) or f" {name} " in l)
        assert "ready" in line and "127.0.0.1:" in line


def test_env_exports_endpoints_and_credentials(running):
    out = running.devenv("env").stdout
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in out
    assert "export AWS_ENDPOINT_URL_SQS=" in out and "export AWS_ENDPOINT_URL_EVENTBRIDGE=" in out
    assert "export DATABASE_URL=" in out and "export REDIS_URL=" in out
    assert "export AWS_REGION=us-east-1" in out


def test_code_written_for_localstack_runs_unchanged_against_moto(running):
    assert "export LOCALSTACK_HOST=127.0.0.1:" in running.devenv("env").stdout
    assert_runs_unchanged(running.env(), "work-dlq", "itest-bucket", "itest-events")


def test_postgres_accepts_the_generated_password_and_has_the_database(running):
    env = running.env()
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        assert conn.execute("select current_database(), current_user").fetchone() == ("itest", "itest")
    assert subprocess.run(["psql", env["DATABASE_URL"], "-tAc", "select 42"], capture_output=True,
                          text=True, timeout=30).stdout.strip() == "42"
    wrong = env["DATABASE_URL"].replace("://itest:", "://itest:wrong", 1)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)


def test_redis_requires_its_password(running):
    env = running.env()
    client = redis.Redis.from_url(env["REDIS_URL"])
    assert client.ping() is True
    port = int(env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port, password="nope").ping()
    cli = subprocess.run(["redis-cli", "-u", env["REDIS_URL"], "ping"], capture_output=True, text=True, timeout=30)
    assert cli.stdout.strip() == "PONG"


def test_servers_bind_loopback_only(running):
    for name, (pid, _) in component_pids(running).items():
        address = next(c.address for c in record_of(running).components if c.name == name)
        assert address.startswith("127.0.0.1:")
    # Nothing of ours answers on a non-loopback address of this host.
    port = int(running.env()["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    hostname_ip = socket.gethostbyname(socket.gethostname())
    if not hostname_ip.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((hostname_ip, port), timeout=1).close()


def test_queues_rules_and_redrive_are_deployed(running):
    sqs, events, s3 = clients(running.env())
    urls = sqs.list_queues()["QueueUrls"]
    assert {u.rsplit("/", 1)[1] for u in urls} >= {"work", "work-dlq"}
    assert "itest-bucket" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    work = sqs.get_queue_url(QueueName="work")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="work-dlq")["QueueUrl"]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=work, AttributeNames=["RedrivePolicy"])
                        ["Attributes"]["RedrivePolicy"])
    assert int(policy["maxReceiveCount"]) == 2 and policy["deadLetterTargetArn"].endswith(":work-dlq")

    # A matching event lands in the rule's queue; a non-matching one does not.
    events.put_events(Entries=[
        {"Source": "itest.producer", "DetailType": "thing.created", "Detail": json.dumps({"id": "t1"}),
         "EventBusName": "itest-events"},
        {"Source": "someone.else", "DetailType": "thing.created", "Detail": "{}", "EventBusName": "itest-events"},
    ])
    got = sqs.receive_message(QueueUrl=work, WaitTimeSeconds=2, MaxNumberOfMessages=10, VisibilityTimeout=0)
    bodies = [json.loads(m["Body"]) for m in got.get("Messages", [])]
    assert [b["detail"] for b in bodies] == [{"id": "t1"}]
    assert bodies[0]["source"] == "itest.producer"

    # Received more than maxReceiveCount times, it moves to the DLQ.
    def in_dlq() -> bool:
        sqs.receive_message(QueueUrl=work, VisibilityTimeout=0, MaxNumberOfMessages=10)
        found = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        return any(json.loads(m["Body"])["detail"] == {"id": "t1"} for m in found)

    assert wait_until(in_dlq, timeout=10, interval=0.05)


def test_second_up_changes_nothing_and_says_so(running):
    result = running.devenv("up")
    assert "already running" in result.stdout
    assert "nothing to change" in result.stdout
    assert component_pids(running)  # same supervisor, still running


def test_logs_show_component_output(running):
    result = running.devenv("logs", "emulator", "-n", "5")
    assert result.stdout.strip()
    merged = running.devenv("logs", "-n", "2").stdout
    assert "postgres |" in merged or "postgres" in merged
    missing = running.devenv("logs", "nope", check=False)
    assert missing.returncode != 0 and "no logs for 'nope'" in missing.stderr
    assert running.devenv("logs", "emulator", "-n", "5", "--level", "warn").returncode == 0  # an alias
    unknown = running.devenv("logs", "--level", "loud", check=False)
    assert unknown.returncode != 0 and "unknown level 'loud'" in unknown.stderr


# ---------------------------------------------------------------- lifecycle, one stack per test


def test_data_survives_down_and_up(project):
    project.devenv("up")
    url = project.env()["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table kept (v text)")
        conn.execute("insert into kept values ('still here')")
    down = project.devenv("down")
    assert "stopped" in down.stdout
    assert not any(is_alive(pid, start) for pid, start in
                   [(c.pid, c.pid_start) for c in record_of(project).components if c.pid])
    status = project.devenv("status", check=False)
    assert status.returncode != 0
    project.devenv("up")
    assert project.env()["DATABASE_URL"] == url  # same port, same password
    with psycopg.connect(url) as conn:
        assert conn.execute("select v from kept").fetchone() == ("still here",)


def test_down_volumes_wipes_the_state(project):
    project.devenv("up")
    project.devenv("down", "--volumes")
    assert not project.state.exists()
    assert "nothing was running" in project.devenv("down").stdout


def test_kill_9_of_the_supervisor_leaves_no_orphans_and_up_recovers(project):
    project.devenv("up")
    before = component_pids(project)
    supervisor = record_of(project).supervisor_pid
    os.kill(supervisor, signal.SIGKILL)
    assert wait_until(lambda: not any(is_alive(p, s) for p, s in before.values()), timeout=15), \
        "component processes outlived their supervisor"
    status = project.devenv("status", check=False)
    assert status.returncode != 0
    assert "gone without stopping" in status.stdout
    up = project.devenv("up")
    assert "is up" in up.stdout
    assert record_of(project).supervisor_pid != supervisor
    with psycopg.connect(project.env()["DATABASE_URL"]) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_killed_postgres_is_shown_then_restarted(project):
    project.devenv("up")
    pid, start = component_pids(project)["postgres"]
    os.kill(pid, signal.SIGKILL)

    def restarted() -> bool:
        pg = record_of(project).component("postgres")
        return pg.restarts >= 1 and pg.state.value == "ready"

    assert wait_until(restarted, timeout=30)
    status = project.devenv("status").stdout
    line = next(l for l in status.splitlines() if "postgres" in l)
    assert "killed by SIGKILL" in line and "ready" in line
    with psycopg.connect(project.env()["DATABASE_URL"]) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_kill_9_of_postgres_loses_no_committed_row(project):
    """Writers insert rows, each acknowledged by its commit; Postgres's postmaster is killed
    with -9 in mid-stream and restarted by the supervisor: every acknowledged row is there.
    (With synchronous_commit=off about one acknowledged row was lost per kill.)"""
    project.devenv("up")
    url = project.env()["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table acked (id bigint primary key)")
    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(first: int) -> None:
        number = first
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                while not stop.is_set():
                    conn.execute("insert into acked values (%s)", (number,))
                    with lock:
                        acknowledged.append(number)  # the commit returned: acknowledged
                    number += 4
        except psycopg.Error:
            pass  # the kill: this writer's last insert was never acknowledged

    writers = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(4)]
    for thread in writers:
        thread.start()
    assert wait_until(lambda: len(acknowledged) >= 400, timeout=30), "the writers did not get going"
    pid, start = component_pids(project)["postgres"]
    os.kill(pid, signal.SIGKILL)
    for thread in writers:
        thread.join(timeout=30)
    stop.set()
    assert wait_until(lambda: record_of(project).component("postgres").restarts >= 1
                      and record_of(project).component("postgres").state.value == "ready", timeout=60)
    with psycopg.connect(url) as conn:
        stored = {row[0] for row in conn.execute("select id from acked")}
    lost = sorted(set(acknowledged) - stored)
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged rows lost: {lost[:10]}"


def test_up_runtime_is_passed_to_the_supervisor_not_through_the_environment(project):
    project.file.write_text(project.file.read_text() + "runtime: docker\n")
    project.devenv("up", "--runtime", "native")
    record = record_of(project)
    assert record.runtime == "native"
    argv = open(f"/proc/{record.supervisor_pid}/cmdline", "rb").read().split(b"\0")
    assert argv[-3:] == [b"--runtime", b"native", b""]
    assert b"DEVENV_RUNTIME=" not in open(f"/proc/{record.supervisor_pid}/environ", "rb").read()
    project.devenv("down")


def test_foreground_up_runs_until_ctrl_c(project):
    proc = subprocess.Popen([sys.executable, "-m", "devenv", "up", "--foreground", "--file", str(project.file)],
                            cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: (r := record_of(project)) is not None and r.phase.value == "ready"
                          or proc.poll() is not None, timeout=60)
        assert record_of(project).supervisor_pid == proc.pid
        started = component_pids(project)
        assert set(started) == {"postgres", "redis", "emulator"}
        sqs, _, _ = clients(project.env())  # the provisioner deployed the managed plane once moto was ready
        assert any(url.endswith("/work") for url in sqs.list_queues()["QueueUrls"])
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "stopped" in stdout
    assert not any(is_alive(p, s) for p, s in started.values())


def test_busy_configured_port_is_a_clear_error(project):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        project.file.write_text(project.file.read_text().replace("  redis: {}", f"  redis:\n    port: {port}"))
        result = project.devenv("up", check=False)
    assert result.returncode == 5
    assert f"redis: port {port} (from devenv.yaml) is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_during_up_stops_what_was_started(project):
    proc = subprocess.Popen([sys.executable, "-m", "devenv", "up", "--file", str(project.file)],
                            cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_until(lambda: (r := record_of(project)) is not None and any(c.pid for c in r.components),
                      timeout=30)
    started = component_pids(project)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert wait_until(lambda: not any(is_alive(p, s) for p, s in started.values()), timeout=15)
    assert project.devenv("status", check=False).returncode != 0
