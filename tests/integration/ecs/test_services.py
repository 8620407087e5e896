"""ECS emulation for real: task processes on their own loopback addresses, health checks,
replacement, rolling deploys, rollback, manual and automatic scaling."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devenv.compute.ecs.control import EcsControl
from devenv.health import wait_until
from devenv.runtime.record import read_record
from tests.integration.conftest import Project, make_project_dir, not_on
from tests.integration.ecs import ECS_EVENTS_REFUSED

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "services"

HEALTH = """
    health_check:
      command: [CMD-SHELL, "curl -f http://localhost:8000/health/live || exit 1"]
      interval: 0.5
      timeout: 1
      retries: 2
      start_period: 1"""


def service(name: str, folder: str, extra: str = "", desired: int = 2) -> str:
    return f"""
  {name}:
    build: services/{folder}
    command: [python, app.py]
    cpu: 512
    memory: 1024
    desired_count: {desired}{HEALTH}
    deployment: {{minimum_healthy_percent: 50, maximum_percent: 200, circuit_breaker: {{enable: true, rollback: true}}}}{extra}"""


STACK = f"""\
name: ecsit
infra:
  postgres: {{}}
  redis: false
services:{service("keeper", "keeper", extra=chr(10) + "    secrets: {DATABASE_URL: postgres.url}")}{service("sick", "sick")}{service("roller", "roller")}{service("scaler", "scaler", desired=1, extra='''
    autoscaling: {min: 1, max: 3, target_cpu: 40, scale_out_cooldown: 1, scale_in_cooldown: 3}''')}
"""


@pytest.fixture(scope="module")
def stack():
    root = make_project_dir()
    for folder in ("keeper", "sick", "roller", "scaler"):
        shutil.copytree(FIXTURES / "web", root / "services" / folder)
    project = Project(root, STACK)
    project.devenv("up")
    record = read_record(project.state / "run" / "stack.json")
    project.ecs = EcsControl(f"http://127.0.0.1:{record.ports['ecs']}")
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


def running(stack, name: str) -> list[dict]:
    return [t for t in stack.ecs.tasks(stopped=False) if t["service"] == name and t["lastStatus"] == "RUNNING"]


def healthy(stack, name: str) -> list[dict]:
    return [t for t in running(stack, name) if t["healthStatus"] == "HEALTHY"]


def get(address: str, path: str = "/whoami", timeout: float = 5) -> dict:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=timeout) as response:
        return json.loads(response.read())


def service_view(stack, name: str) -> dict:
    return next(s for s in stack.ecs.services() if s["serviceName"] == name)


def test_desired_count_is_kept_on_distinct_loopback_addresses(stack):
    assert wait_until(lambda: len(healthy(stack, "keeper")) == 2, timeout=30)
    tasks = healthy(stack, "keeper")
    addresses = {t["address"] for t in tasks}
    assert len(addresses) == 2 and all(a.startswith("127.") and not a.startswith("127.0.0.1:") and a.endswith(":8000") for a in addresses)
    answers = {get(t["address"])["task"] for t in tasks}
    assert answers == {t["taskId"] for t in tasks}  # each address is its own task
    assert get(tasks[0]["address"])["database"] == "postgresql://"  # secrets from the stack
    ps = stack.devenv("ps").stdout
    assert "keeper" in ps and "HEALTHY" in ps
    status = stack.devenv("status").stdout
    assert "services" in status and "keeper" in status


def test_killed_task_is_replaced(stack):
    assert wait_until(lambda: len(healthy(stack, "keeper")) == 2, timeout=30)
    victim = healthy(stack, "keeper")[0]
    os.kill(victim["pid"], signal.SIGKILL)
    assert wait_until(lambda: len(healthy(stack, "keeper")) == 2 and
                      victim["taskId"] not in {t["taskId"] for t in healthy(stack, "keeper")}, timeout=30)
    stopped = next(t for t in stack.ecs.tasks() if t["taskId"] == victim["taskId"])
    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stoppedReason"] == "Essential container in task exited (exit code -9)"


def test_unhealthy_task_is_stopped_and_replaced(stack):
    assert wait_until(lambda: len(healthy(stack, "sick")) == 2, timeout=30)
    victim = healthy(stack, "sick")[0]
    urllib.request.urlopen(urllib.request.Request(f"http://{victim['address']}/admin/unhealthy", data=b"",
                                                  method="POST"), timeout=5).read()
    assert wait_until(lambda: next(t for t in stack.ecs.tasks() if t["taskId"] == victim["taskId"])
                      ["lastStatus"] == "STOPPED", timeout=30)
    stopped = next(t for t in stack.ecs.tasks() if t["taskId"] == victim["taskId"])
    assert stopped["healthStatus"] == "UNHEALTHY"
    assert stopped["stoppedReason"] == "Task failed container health checks"
    assert wait_until(lambda: len(healthy(stack, "sick")) == 2, timeout=30)


def test_rolling_deploy_replaces_every_task_and_keeps_minimum_healthy(stack):
    assert wait_until(lambda: service_view(stack, "roller")["deployments"][-1]["rolloutState"] == "COMPLETED"
                      and len(healthy(stack, "roller")) == 2, timeout=30)
    (stack.root / "services" / "roller" / "VERSION").write_text("2\n")
    lowest = [2]
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            lowest[0] = min(lowest[0], len(healthy(stack, "roller")))
            time.sleep(0.05)  # sampling rate of the observer, not synchronisation

    observer = threading.Thread(target=watch, daemon=True)
    observer.start()
    stack.devenv("deploy", "roller")

    def rolled_out() -> bool:
        tasks = healthy(stack, "roller")
        view = service_view(stack, "roller")
        return (view["deployments"][-1]["rolloutState"] == "COMPLETED" and len(tasks) == 2
                and all(get(t["address"])["version"] == "2" for t in tasks) and view["runningCount"] == 2)

    try:
        assert wait_until(rolled_out, timeout=60, interval=0.2)
    finally:
        watching.set()
        observer.join(timeout=5)
    assert lowest[0] >= 1  # minimum healthy percent 50% of 2
    assert service_view(stack, "roller")["revision"] == 2


def test_broken_deployment_rolls_back_and_says_why(stack):
    assert wait_until(lambda: service_view(stack, "roller")["deployments"][-1]["rolloutState"] == "COMPLETED",
                      timeout=60)
    before = service_view(stack, "roller")["revision"]
    broken = stack.root / "services" / "roller" / "BROKEN"
    broken.write_text("on purpose\n")
    try:
        stack.devenv("deploy", "roller")

        def rolled_back() -> bool:
            deployments = service_view(stack, "roller")["deployments"]
            return (any(d["rolloutState"] == "FAILED" for d in deployments)
                    and deployments[-1]["rolloutState"] == "COMPLETED"
                    and deployments[-1]["revision"] == before)

        assert wait_until(rolled_back, timeout=60, interval=0.2)
    finally:
        broken.unlink()
    failed = next(d for d in service_view(stack, "roller")["deployments"] if d["rolloutState"] == "FAILED")
    assert "circuit breaker" in failed["reason"] and "Essential container in task exited" in failed["reason"]
    assert len(healthy(stack, "roller")) == 2
    assert "rollback to revision" in stack.devenv("status").stdout


def test_manual_scale(stack):
    stack.devenv("scale", "keeper", "3")
    assert wait_until(lambda: len(healthy(stack, "keeper")) == 3, timeout=30)
    stack.devenv("scale", "keeper", "2")
    assert wait_until(lambda: len(running(stack, "keeper")) == 2, timeout=30)


def test_cpu_load_scales_out_then_idleness_scales_in(stack):
    assert wait_until(lambda: len(healthy(stack, "scaler")) == 1, timeout=30)
    stop = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + 60  # bounded
        while not stop.is_set() and time.monotonic() < deadline:
            for task in healthy(stack, "scaler"):
                try:
                    get(task["address"], "/burn?ms=150", timeout=5)
                except (urllib.error.URLError, OSError):
                    pass

    workers = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        assert wait_until(lambda: service_view(stack, "scaler")["desiredCount"] >= 2, timeout=40, interval=0.2)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
    assert wait_until(lambda: service_view(stack, "scaler")["desiredCount"] == 1, timeout=40, interval=0.2)
    events = " ".join(e["message"] for e in service_view(stack, "scaler")["events"])
    assert "above target" in events and "below target" in events


def test_scale_past_autoscaling_max_says_so_and_target_tracking_acts_later(stack):
    """`devenv scale scaler 9` (autoscaling 1-3): clamped to 3 and said so; the tasks start (the
    scale was not undone on the next tick) and target tracking then scales the idle service in."""
    assert wait_until(lambda: service_view(stack, "scaler")["desiredCount"] == 1, timeout=40, interval=0.2)
    result = stack.devenv("scale", "scaler", "9")
    said = " ".join(result.stdout.split())
    assert "scaler: requested 9, desired count set to 3 = autoscaling max" in said
    assert "raise services.scaler.autoscaling.max in devenv.yaml" in said
    assert "target tracking (average CPU 40%, 1-3 tasks" in said and "may change this count" in said
    assert wait_until(lambda: len(running(stack, "scaler")) == 3, timeout=30)
    assert wait_until(lambda: service_view(stack, "scaler")["desiredCount"] == 1, timeout=40, interval=0.2)
    events = [e["message"] for e in service_view(stack, "scaler")["events"]]
    manual = events.index("desired count 1 -> 3 (requested 9, autoscaling max)")
    assert any("below target" in m and "3 -> 1 tasks" in m for m in events[manual + 1:])


def test_deploy_watch_rolls_out_on_every_code_change(stack):
    import subprocess
    import sys

    assert wait_until(lambda: service_view(stack, "keeper")["deployments"][-1]["rolloutState"] == "COMPLETED",
                      timeout=60)
    start = service_view(stack, "keeper")["revision"]
    watcher = subprocess.Popen([sys.executable, "-m", "devenv", "deploy", "keeper", "--watch", "--file",
                                str(stack.file)], cwd=stack.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert wait_until(lambda: service_view(stack, "keeper")["revision"] == start + 1, timeout=20)
        (stack.root / "services" / "keeper" / "VERSION").write_text("watched\n")
        assert wait_until(lambda: service_view(stack, "keeper")["revision"] == start + 2, timeout=20)

        def serving_new_code() -> bool:
            tasks = healthy(stack, "keeper")
            return len(tasks) == 2 and all(get(t["address"])["version"] == "watched" for t in tasks)

        assert wait_until(serving_new_code, timeout=60, interval=0.2)
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=20)
    assert "code changed; deployment" in out, err


# ---------------------------------------------------------------- the AWS APIs through boto3


def aws(stack, service: str):
    """A boto3 client configured by `devenv env` alone (AWS_ENDPOINT_URL_<SERVICE>)."""
    import boto3

    env = stack.env()
    key = {"ecs": "ECS", "application-autoscaling": "APPLICATION_AUTO_SCALING"}[service]
    return boto3.client(service, endpoint_url=env[f"AWS_ENDPOINT_URL_{key}"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def test_ecs_api_describes_what_ps_shows_and_its_waiters_return(stack):
    from tests.support import assert_output_shape

    ecs = aws(stack, "ecs")
    assert_output_shape("ecs", "ListClusters", ecs.list_clusters())
    [cluster] = assert_output_shape("ecs", "DescribeClusters", ecs.describe_clusters(clusters=["ecsit"]))["clusters"]
    assert cluster["clusterArn"].endswith(":cluster/ecsit") and cluster["activeServicesCount"] == 4
    arns = assert_output_shape("ecs", "ListServices", ecs.list_services(cluster="ecsit"))["serviceArns"]
    assert sorted(a.rsplit("/", 1)[1] for a in arns) == ["keeper", "roller", "scaler", "sick"]
    ecs.get_waiter("services_stable").wait(cluster="ecsit", services=["keeper"],
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    [keeper] = assert_output_shape("ecs", "DescribeServices", ecs.describe_services(
        cluster="ecsit", services=["keeper"]))["services"]
    assert keeper["runningCount"] == service_view(stack, "keeper")["runningCount"] == keeper["desiredCount"]
    task_arns = assert_output_shape("ecs", "ListTasks", ecs.list_tasks(cluster="ecsit", serviceName="keeper"))["taskArns"]
    ecs.get_waiter("tasks_running").wait(cluster="ecsit", tasks=task_arns, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    tasks = assert_output_shape("ecs", "DescribeTasks", ecs.describe_tasks(cluster="ecsit", tasks=task_arns))["tasks"]
    ps = {t["taskId"]: t for t in stack.ecs.tasks(stopped=False)}
    for task in tasks:
        own = ps[task["taskArn"].rsplit("/", 1)[1]]
        details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
        assert details["privateIPv4Address"] == own["address"].split(":")[0]
        assert (task["lastStatus"], task["healthStatus"]) == (own["lastStatus"], own["healthStatus"])
    definitions = assert_output_shape("ecs", "ListTaskDefinitions", ecs.list_task_definitions(familyPrefix="keeper"))
    latest = definitions["taskDefinitionArns"][-1]
    described = assert_output_shape("ecs", "DescribeTaskDefinition", ecs.describe_task_definition(taskDefinition=latest))
    assert described["taskDefinition"]["revision"] == service_view(stack, "keeper")["revision"]

    victim = task_arns[0]
    stopped = assert_output_shape("ecs", "StopTask", ecs.stop_task(cluster="ecsit", task=victim, reason="runbook"))
    assert stopped["task"]["desiredStatus"] == "STOPPED"
    assert wait_until(lambda: len(healthy(stack, "keeper")) == 2 and victim.rsplit("/", 1)[1]
                      not in {t["taskId"] for t in healthy(stack, "keeper")}, timeout=30)
    [gone] = ecs.describe_tasks(cluster="ecsit", tasks=[victim])["tasks"]
    assert (gone["lastStatus"], gone["stoppedReason"], gone["stopCode"]) == ("STOPPED", "runbook", "UserInitiated")
    assert next(t for t in stack.ecs.tasks() if t["taskId"] == victim.rsplit("/", 1)[1])["stoppedReason"] == "runbook"


def test_application_autoscaling_through_boto3(stack):
    from tests.support import assert_output_shape

    scaling, ecs = aws(stack, "application-autoscaling"), aws(stack, "ecs")
    assert wait_until(lambda: service_view(stack, "scaler")["desiredCount"] == 1, timeout=40, interval=0.2)
    [target] = assert_output_shape("application-autoscaling", "DescribeScalableTargets", scaling.describe_scalable_targets(
        ServiceNamespace="ecs"))["ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == ("service/ecsit/scaler", 1, 3)
    [policy] = assert_output_shape("application-autoscaling", "DescribeScalingPolicies", scaling.describe_scaling_policies(
        ServiceNamespace="ecs"))["ScalingPolicies"]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 40.0
    try:
        assert_output_shape("application-autoscaling", "RegisterScalableTarget", scaling.register_scalable_target(
            ServiceNamespace="ecs", ResourceId="service/ecsit/scaler", ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=2, MaxCapacity=3))
        assert wait_until(lambda: len(running(stack, "scaler")) == 2, timeout=30)
        service = assert_output_shape("ecs", "UpdateService", ecs.update_service(cluster="ecsit", service="scaler",
                                                                                 desiredCount=1))["service"]
        assert service["desiredCount"] == 2  # held at the new minimum
    finally:
        scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId="service/ecsit/scaler",
                                         ScalableDimension="ecs:service:DesiredCount", MinCapacity=1)
    activities = assert_output_shape("application-autoscaling", "DescribeScalingActivities",
                                     scaling.describe_scaling_activities(ServiceNamespace="ecs",
                                                                         ResourceId="service/ecsit/scaler"))
    causes = [a["Cause"] for a in activities["ScalingActivities"]]
    assert "minimum capacity was set to 2" in causes
    # test_cpu_load_scales_out_then_idleness_scales_in's scale-out, as AWS words it
    assert any(c.startswith("monitor alarm TargetTracking-service/ecsit/scaler-AlarmHigh-") and
               c.endswith("in state ALARM triggered policy scaler-cpu-target-tracking") for c in causes)


def test_a_rule_on_aws_ecs_events_delivers_the_task_state_change_to_sqs(stack):
    """A user's own rule on the default bus (pattern on source aws.ecs) -> an SQS queue: the
    task StopTask stops arrives as an "ECS Task State Change" with lastStatus STOPPED."""
    not_on(stack, ECS_EVENTS_REFUSED)
    import boto3

    env = stack.env()
    settings = dict(region_name=env["AWS_REGION"], aws_access_key_id="test", aws_secret_access_key="test")
    sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL_SQS"], **settings)
    events = boto3.client("events", endpoint_url=env["AWS_ENDPOINT_URL_EVENTBRIDGE"], **settings)
    queue = sqs.create_queue(QueueName="ecs-task-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="ecs-tasks-stopped", EventBusName="default", EventPattern=json.dumps(
        {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"], "detail": {"lastStatus": ["STOPPED"]}}))
    events.put_targets(Rule="ecs-tasks-stopped", EventBusName="default", Targets=[{"Id": "q", "Arn": arn}])
    try:
        assert wait_until(lambda: len(healthy(stack, "keeper")) == 2, timeout=30)
        victim = healthy(stack, "keeper")[0]["taskId"]
        aws(stack, "ecs").stop_task(cluster="ecsit", task=victim)
        received: list[dict] = []

        def arrived() -> bool:
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", []):
                received.append(json.loads(message["Body"]))
            return any(e["detail"]["taskArn"].endswith("/" + victim) for e in received)

        assert wait_until(arrived, timeout=40)
        event = next(e for e in received if e["detail"]["taskArn"].endswith("/" + victim))
        assert (event["source"], event["detail-type"], event["detail"]["stopCode"]) == (
            "aws.ecs", "ECS Task State Change", "UserInitiated")
        assert event["detail"]["clusterArn"].endswith(":cluster/ecsit")
        assert event["resources"] == [event["detail"]["taskArn"]]
    finally:
        events.remove_targets(Rule="ecs-tasks-stopped", EventBusName="default", Ids=["q"])
        events.delete_rule(Name="ecs-tasks-stopped", EventBusName="default")
        sqs.delete_queue(QueueUrl=queue)
