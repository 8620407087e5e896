"""Fargate Spot for real: tasks placed by a capacity provider strategy, and `devenv interrupt`
giving Spot tasks AWS's sequence (the notice on the default bus, the target drained, the task
stopped with stopCode SpotInterruption, a replacement on Spot) with the base FARGATE task
untouched and no request through the ALB failing."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from devenv.health import wait_until
from tests.integration.conftest import emulator_of, not_on
from tests.integration.ecs import ECS_EVENTS_REFUSED, stack_with_alb

pytestmark = pytest.mark.integration

STACK = """\
name: spotit
infra:
  postgres: false
  redis: false
fargate_spot: {warning: 10}
load_balancer:
  hostname: internal-alb.spotit.local
services:
  fleet:
    build: services/fleet
    command: [python, app.py]
    cpu: 256
    memory: 512
    desired_count: 3
    capacity_provider_strategy:  # AWS's example: base 1 on FARGATE, then 1 FARGATE to 4 FARGATE_SPOT
      - {capacity_provider: FARGATE, weight: 1, base: 1}
      - {capacity_provider: FARGATE_SPOT, weight: 4}
    health_check:
      command: [CMD-SHELL, "curl -f http://localhost:8000/health/live || exit 1"]
      interval: 0.5
      timeout: 1
      retries: 2
      start_period: 1
    deployment: {minimum_healthy_percent: 100, maximum_percent: 200}
    load_balancer:
      paths: ["/fleet/*"]
      priority: 10
      deregistration_delay: 3  # long enough to see the interrupted targets draining
      health_check: {path: /fleet/health/live, interval: 0.5, timeout: 1, healthy_threshold: 2,
                     unhealthy_threshold: 2}
"""


@pytest.fixture(scope="module")
def stack():
    yield from stack_with_alb(STACK, "fleet")


def healthy(stack) -> list[dict]:
    view = next(s for s in stack.ecs.services() if s["serviceName"] == "fleet")
    tasks = [t for t in stack.ecs.tasks(stopped=False) if t["lastStatus"] == "RUNNING"]
    return tasks if view["healthyCount"] == 3 and len(tasks) == 3 else []


def by_provider(tasks: list[dict]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for task in tasks:
        found.setdefault(task["capacityProvider"], set()).add(task["taskId"])
    return found


def client(stack, service: str):
    import boto3

    env = stack.env()
    key = {"ecs": "ECS", "elbv2": "ELASTIC_LOAD_BALANCING_V2", "sqs": "SQS", "events": "EVENTBRIDGE"}[service]
    return boto3.client(service, endpoint_url=env[f"AWS_ENDPOINT_URL_{key}"], region_name=env["AWS_REGION"],
                        aws_access_key_id="test", aws_secret_access_key="test")


def through_alb(stack) -> int:
    try:
        with urllib.request.urlopen(stack.alb + "/fleet/whoami", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_tasks_run_where_the_strategy_puts_them(stack):
    from tests.support import assert_output_shape

    assert wait_until(lambda: healthy(stack), timeout=40)
    providers = by_provider(healthy(stack))
    assert {p: len(ids) for p, ids in providers.items()} == {"FARGATE": 1, "FARGATE_SPOT": 2}
    ecs = client(stack, "ecs")
    [service] = assert_output_shape("ecs", "DescribeServices", ecs.describe_services(
        cluster="spotit", services=["fleet"]))["services"]
    assert [(i["capacityProvider"], i["weight"], i["base"]) for i in service["capacityProviderStrategy"]] == [
        ("FARGATE", 1, 1), ("FARGATE_SPOT", 4, 0)]
    arns = ecs.list_tasks(cluster="spotit", serviceName="fleet")["taskArns"]
    tasks = assert_output_shape("ecs", "DescribeTasks", ecs.describe_tasks(cluster="spotit", tasks=arns))["tasks"]
    assert {t["taskArn"].rsplit("/", 1)[1]: t["capacityProviderName"] for t in tasks} == {
        task: provider for provider, ids in providers.items() for task in ids}
    ps = stack.devenv("ps").stdout
    assert "FARGATE_SPOT" in ps and "provider" in ps


def test_interrupted_spot_tasks_drain_stop_and_are_replaced_on_spot(stack):
    sqs, events, elbv2 = client(stack, "sqs"), client(stack, "events"), client(stack, "elbv2")
    queue = sqs.create_queue(QueueName="spot-notices")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="spot-interruptions", EventBusName="default", EventPattern=json.dumps(
        {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"], "detail": {"stopCode": ["SpotInterruption"]}}))
    events.put_targets(Rule="spot-interruptions", EventBusName="default", Targets=[{"Id": "q", "Arn": arn}])
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:  # steady requests through the ALB while it happens, bounded in time
        for _ in range(3000):
            if stop.is_set():
                return
            statuses.append(through_alb(stack))
            stop.wait(0.02)  # pacing of the load generator

    generator = threading.Thread(target=load, daemon=True)
    try:
        assert wait_until(lambda: healthy(stack), timeout=40)
        before = by_provider(healthy(stack))
        generator.start()
        assert wait_until(lambda: len(statuses) > 20, timeout=10)
        said = stack.devenv("interrupt", "fleet", "--tasks", "2").stdout
        assert "Spot interruption of 2 FARGATE_SPOT tasks" in said
        spot = before["FARGATE_SPOT"]
        assert all(task in said for task in spot)

        # The ALB drains them (deregistration delay 3 s) ...
        group = elbv2.describe_target_groups(Names=["fleet"])["TargetGroups"][0]["TargetGroupArn"]
        addresses = {t["address"].split(":")[0] for t in stack.ecs.tasks(stopped=True) if t["taskId"] in spot}

        # (An idle target finishes draining at once and its address may serve a replacement
        # already; the ALB shows it draining for the deregistration delay all the same.)
        def draining() -> bool:
            rows = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
            return addresses <= {d["Target"]["Id"] for d in rows if d["TargetHealth"]["State"] == "draining"}

        assert wait_until(draining, timeout=10, interval=0.1)
        # ... then they stop, as ECS words a Spot interruption.
        def gone() -> list[dict]:
            done = [t for t in stack.ecs.tasks(stopped=True) if t["taskId"] in spot and t["lastStatus"] == "STOPPED"]
            return done if len(done) == 2 else []

        assert wait_until(gone, timeout=30)
        for task in gone():
            assert (task["stopCode"], task["stoppedReason"]) == ("SpotInterruption", "Your Spot Task was interrupted.")
        # Replacements come up on Spot; the base task on FARGATE never moved.
        assert wait_until(lambda: healthy(stack) and not spot & {t["taskId"] for t in healthy(stack)}, timeout=40)
        after = by_provider(healthy(stack))
        assert after["FARGATE"] == before["FARGATE"] and len(after["FARGATE_SPOT"]) == 2

        # The notices reached the default bus: desired STOPPED while the task still ran (not on an
        # emulator that refuses aws.ecs events: the skip at the end says so).
        if emulator_of(stack) not in ECS_EVENTS_REFUSED:
            notices: dict[str, dict] = {}

            def arrived() -> bool:
                for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                   WaitTimeSeconds=1).get("Messages", []):
                    event = json.loads(message["Body"])
                    if event["detail"]["lastStatus"] == "RUNNING":
                        notices[event["detail"]["taskArn"].rsplit("/", 1)[1]] = event
                return set(notices) == spot

            assert wait_until(arrived, timeout=40)
            for event in notices.values():
                detail = event["detail"]
                assert (event["source"], detail["desiredStatus"], detail["capacityProviderName"]) == (
                    "aws.ecs", "STOPPED", "FARGATE_SPOT")
                assert detail["stoppedReason"] == "Your Spot Task was interrupted."
        count = len(statuses)
        assert wait_until(lambda: len(statuses) > count + 20, timeout=10)  # still serving afterwards
    finally:
        stop.set()
        generator.join(timeout=30)
        events.remove_targets(Rule="spot-interruptions", EventBusName="default", Ids=["q"])
        events.delete_rule(Name="spot-interruptions", EventBusName="default")
        sqs.delete_queue(QueueUrl=queue)
    failed = [s for s in statuses if s != 200]
    assert failed == [], f"{len(failed)} of {len(statuses)} requests failed: {sorted(set(failed))}"
    not_on(stack, ECS_EVENTS_REFUSED)  # all of the above was checked; the notices on the bus were not


def test_interrupting_a_service_without_spot_tasks_says_why(stack):
    assert wait_until(lambda: healthy(stack), timeout=40)
    done = stack.devenv("interrupt", "nope", check=False)
    assert done.returncode != 0 and "no service 'nope'" in done.stderr
