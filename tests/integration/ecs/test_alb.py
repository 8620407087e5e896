"""The internal ALB in front of real ECS tasks: routing, replacement of a killed task, a
rolling deploy under steady load with no failed request, draining of a slow request."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest

from devenv.health import wait_until
from tests.integration.conftest import NO_PERCENTILES, emulator_of, not_on
from tests.integration.ecs import stack_with_alb

pytestmark = pytest.mark.integration

STACK = """\
name: albit
infra:
  postgres: false
  redis: false
metrics: {interval: 1}
load_balancer:
  hostname: internal-alb.albit.local
  idle_timeout: 10
services:
  front:
    build: services/front
    command: [python, app.py]
    cpu: 512
    memory: 1024
    desired_count: 2
    health_check:
      command: [CMD-SHELL, "curl -f http://localhost:8000/health/live || exit 1"]
      interval: 0.5
      timeout: 1
      retries: 2
      start_period: 1
    deployment: {minimum_healthy_percent: 100, maximum_percent: 200}
    load_balancer:
      paths: ["/front/*"]
      priority: 10
      deregistration_delay: 15  # long enough for a slow AWS CLI to see a killed task draining
      health_check: {path: /front/health/live, interval: 0.5, timeout: 1, healthy_threshold: 2,
                     unhealthy_threshold: 2}
"""


@pytest.fixture(scope="module")
def stack():
    yield from stack_with_alb(STACK, "front")


def through_alb(stack, path: str = "/front/whoami", timeout: float = 10) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(stack.alb + path, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def serving(stack) -> list[dict]:
    view = next(s for s in stack.ecs.services() if s["serviceName"] == "front")
    tasks = [t for t in stack.ecs.tasks(stopped=False) if t["lastStatus"] == "RUNNING"]
    return tasks if view["healthyCount"] == 2 and len(tasks) == 2 else []


def test_round_robin_with_forwarding_headers(stack):
    assert wait_until(lambda: serving(stack), timeout=30)
    seen = set()
    for _ in range(6):
        status, body = through_alb(stack)
        assert status == 200
        seen.add(body["task"])
        assert body["xff"] == "127.0.0.1" and body["trace"].startswith("Root=1-")
        assert body["path"] == "/front/whoami"
    assert seen == {t["taskId"] for t in serving(stack)}
    assert through_alb(stack, "/elsewhere")[0] == 404  # no listener rule matches


def test_killed_task_leaves_the_rotation_and_is_replaced(stack):
    assert wait_until(lambda: serving(stack), timeout=30)
    victim = serving(stack)[0]
    os.kill(victim["pid"], signal.SIGKILL)
    assert wait_until(lambda: serving(stack) and victim["taskId"] not in {t["taskId"] for t in serving(stack)},
                      timeout=30)
    answers = [through_alb(stack) for _ in range(10)]
    assert all(status == 200 for status, _ in answers)
    assert victim["taskId"] not in {body["task"] for _, body in answers}


def test_rolling_deploy_under_steady_load_fails_no_request(stack):
    assert wait_until(lambda: serving(stack), timeout=30)
    (stack.root / "services" / "front" / "VERSION").write_text("2\n")
    results: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def load() -> None:  # ~50 requests/s, bounded in time
        deadline = time.monotonic() + 90
        while not stop.is_set() and time.monotonic() < deadline:
            status, body = through_alb(stack)
            results.append(status)
            if body:
                versions.add(body["version"])
            time.sleep(0.02)  # pacing of the load generator

    generator = threading.Thread(target=load, daemon=True)
    generator.start()
    try:
        assert wait_until(lambda: len(results) > 20, timeout=10)
        stack.devenv("deploy", "front")

        def done() -> bool:
            tasks = serving(stack)
            return bool(tasks) and all(t["revision"] == 2 for t in tasks)

        assert wait_until(done, timeout=90, interval=0.2)
        count = len(results)
        assert wait_until(lambda: len(results) > count + 20, timeout=10)  # keeps serving afterwards
    finally:
        stop.set()
        generator.join(timeout=15)
    failures = [s for s in results if s != 200]
    assert failures == [], f"{len(failures)} of {len(results)} requests failed: {sorted(set(failures))}"
    assert versions == {"1", "2"}


def test_draining_lets_a_slow_in_flight_request_finish(stack):
    assert wait_until(lambda: serving(stack), timeout=30)
    stack.devenv("scale", "front", "1")
    assert wait_until(lambda: len([t for t in stack.ecs.tasks(stopped=False) if t["lastStatus"] == "RUNNING"]) == 1,
                      timeout=30)
    only = [t for t in stack.ecs.tasks(stopped=False) if t["lastStatus"] == "RUNNING"][0]
    slow: dict = {}

    def slow_request() -> None:
        slow["status"], slow["body"] = through_alb(stack, "/front/slow?s=3", timeout=20)

    requester = threading.Thread(target=slow_request)
    requester.start()

    def in_flight() -> bool:
        with urllib.request.urlopen(f"http://{only['address']}/stats", timeout=5) as response:
            return json.loads(response.read())["slow_in_flight"] == 1

    assert wait_until(in_flight, timeout=10)  # the slow request is on the task before the deploy
    stack.devenv("deploy", "front")  # the old task drains once the new one is healthy
    requester.join(timeout=30)
    assert slow["status"] == 200 and slow["body"]["task"] == only["taskId"]
    assert wait_until(lambda: next(t for t in stack.ecs.tasks() if t["taskId"] == only["taskId"])
                      ["lastStatus"] == "STOPPED", timeout=30)
    stack.devenv("scale", "front", "2")


# ---------------------------------------------------------------- the AWS APIs, through the AWS CLI and boto3


def aws_cli(stack, *args: str, timeout: float = 120) -> dict | None:
    """The AWS CLI (v1, in this environment) with only `devenv env`'s variables; its JSON."""
    from tests.support import aws_cli as run

    return run(stack.env(), *args, timeout=timeout)


def elbv2(stack):
    import boto3

    env = stack.env()
    return boto3.client("elbv2", endpoint_url=env["AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2"],
                        region_name=env["AWS_REGION"], aws_access_key_id="test", aws_secret_access_key="test")


def test_elbv2_describes_the_alb_its_rules_and_target_groups(stack):
    from tests.support import assert_output_shape

    assert wait_until(lambda: serving(stack), timeout=30)
    client = elbv2(stack)
    [lb] = assert_output_shape("elbv2", "DescribeLoadBalancers", client.describe_load_balancers())["LoadBalancers"]
    assert lb["DNSName"] == "internal-alb.albit.local" and lb["Scheme"] == "internal"
    [listener] = assert_output_shape("elbv2", "DescribeListeners", client.describe_listeners(
        LoadBalancerArn=lb["LoadBalancerArn"]))["Listeners"]
    assert listener["Port"] == int(stack.alb.rsplit(":", 1)[1])
    rules = assert_output_shape("elbv2", "DescribeRules", client.describe_rules(
        ListenerArn=listener["ListenerArn"]))["Rules"]
    assert [(r["Priority"], r["Conditions"][0]["Values"] if r["Conditions"] else None) for r in rules] == [
        ("10", ["/front/*"]), ("default", None)]
    [group] = assert_output_shape("elbv2", "DescribeTargetGroups", client.describe_target_groups())["TargetGroups"]
    health = assert_output_shape("elbv2", "DescribeTargetHealth", client.describe_target_health(
        TargetGroupArn=group["TargetGroupArn"]))["TargetHealthDescriptions"]
    assert sorted(h["Target"]["Id"] for h in health if h["TargetHealth"]["State"] == "healthy") == sorted(
        t["address"].split(":")[0] for t in serving(stack))
    assert rules[0]["Actions"][0]["TargetGroupArn"] == group["TargetGroupArn"]


def test_requests_through_the_alb_are_applicationelb_metrics_of_the_load_balancer_elbv2_names(stack):
    import datetime as dt

    import boto3

    assert wait_until(lambda: serving(stack), timeout=30)
    [lb] = elbv2(stack).describe_load_balancers()["LoadBalancers"]
    balancer = lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1]  # app/albit-alb/<id>, as AWS's dimension
    for _ in range(5):
        assert through_alb(stack)[0] == 200
    env = stack.env()
    cloudwatch = boto3.client("cloudwatch", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                              aws_access_key_id="test", aws_secret_access_key="test")

    def read() -> dict[str, list[float]]:
        now = dt.datetime.now(dt.timezone.utc)
        stat = lambda id_, metric, statistic: {"Id": id_, "MetricStat": {  # noqa: E731
            "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": metric,
                       "Dimensions": [{"Name": "LoadBalancer", "Value": balancer}]}, "Period": 3600, "Stat": statistic}}
        queries = [stat("n", "RequestCount", "Sum"), stat("ok", "HTTPCode_Target_2XX_Count", "Sum")]
        if percentiles:
            queries.append(stat("p99", "TargetResponseTime", "p99"))
        got = cloudwatch.get_metric_data(StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(minutes=1),
                                         MetricDataQueries=queries)
        return {r["Id"]: r["Values"] for r in got["MetricDataResults"]}

    percentiles = emulator_of(stack) not in NO_PERCENTILES
    assert wait_until(lambda: sum(read()["n"]) >= 5, timeout=20), read()
    found = read()
    assert sum(found["ok"]) >= 5, found
    not_on(stack, NO_PERCENTILES)
    # (a datapoint published in the query's last second falls in a second period)
    assert found["p99"] and all(0 < p99 < 5 for p99 in found["p99"]), found


def test_aws_cli_shows_a_killed_task_draining_then_gone(stack):
    assert wait_until(lambda: serving(stack), timeout=30)
    [group] = aws_cli(stack, "elbv2", "describe-target-groups")["TargetGroups"]
    victim = serving(stack)[0]
    ip = victim["address"].split(":")[0]

    def states() -> list[str]:
        described = aws_cli(stack, "elbv2", "describe-target-health", "--target-group-arn", group["TargetGroupArn"])
        return [h["TargetHealth"]["State"] for h in described["TargetHealthDescriptions"] if h["Target"]["Id"] == ip]

    os.kill(victim["pid"], signal.SIGKILL)
    draining: list[list[str]] = []
    assert wait_until(lambda: "draining" in (draining.append(states()) or draining[-1]), timeout=30), draining
    # the deregistration delay is 15 s: then the draining target is gone (its address may be
    # taken again by the replacement, which is then initial or healthy)
    assert wait_until(lambda: "draining" not in states(), timeout=30)
    assert wait_until(lambda: serving(stack), timeout=30)


def test_aws_cli_force_new_deployment_rolls_and_services_stable_returns(stack):
    assert wait_until(lambda: serving(stack), timeout=30)
    before = {t["taskId"] for t in serving(stack)}
    service = aws_cli(stack, "ecs", "update-service", "--cluster", "albit", "--service", "front",
                      "--force-new-deployment")["service"]
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    revision = int(service["taskDefinition"].rsplit(":", 1)[1])
    aws_cli(stack, "ecs", "wait", "services-stable", "--cluster", "albit", "--services", "front", timeout=300)
    [after] = aws_cli(stack, "ecs", "describe-services", "--cluster", "albit", "--services", "front")["services"]
    assert len(after["deployments"]) == 1 and after["deployments"][0]["rolloutState"] == "COMPLETED"
    assert after["runningCount"] == after["desiredCount"] == 2
    arns = aws_cli(stack, "ecs", "list-tasks", "--cluster", "albit", "--service-name", "front")["taskArns"]
    tasks = aws_cli(stack, "ecs", "describe-tasks", "--cluster", "albit", "--tasks", *arns)["tasks"]
    assert {t["taskArn"].rsplit("/", 1)[1] for t in tasks}.isdisjoint(before)
    assert all(t["taskDefinitionArn"].endswith(f"front:{revision}") for t in tasks)
    messages = [e["message"] for e in after["events"]]
    assert messages[0] == "(service front) has reached a steady state."
    assert any(m.startswith("(service front) has begun draining connections on 1 tasks.") for m in messages)
