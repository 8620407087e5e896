"""CodeDeploy blue/green for real: task processes behind the ALB's two target groups, hooks run
as Lambda functions that report through boto3's codedeploy client, a canary under steady load
that completes and one whose hook fails that rolls back, neither failing a request."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devenv.health import wait_until
from tests.integration.ecs import stack_with_alb
from tests.support import assert_output_shape

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service(name: str, priority: int, blue_green: str) -> str:
    return f"""
  {name}:
    build: services/{name}
    command: [python, app.py]
    desired_count: 2
    health_check:
      command: [CMD-SHELL, "curl -f http://localhost:8000/health/live || exit 1"]
      interval: 0.5
      timeout: 1
      retries: 2
      start_period: 1
    deployment_controller: CODE_DEPLOY
    load_balancer:
      paths: ["/{name}/*"]
      priority: {priority}
      deregistration_delay: 5
      health_check: {{path: /{name}/health/live, interval: 0.5, timeout: 1, healthy_threshold: 2,
                     unhealthy_threshold: 2}}
    blue_green:{blue_green}"""


HOOKS = Path(__file__).resolve().parents[2] / "fixtures" / "functions" / "hooks"


def stack_yaml(test_port: int) -> str:
    canary = f"""
      deployment_config: CodeDeployDefault.ECSCanary10Percent5Minutes
      time_scale: 0.01   # the 5-minute interval: 3 s
      test_listener_port: {test_port}
      hooks:
        AfterAllowTestTraffic: smoke
        AfterAllowTraffic: passes"""
    doomed = """
      deployment_config: CodeDeployDefault.ECSCanary10Percent5Minutes
      time_scale: 0.01
      hooks:
        BeforeAllowTraffic: vetoes"""
    return f"""\
name: bgit
infra:
  postgres: false
  redis: false
load_balancer:
  hostname: internal-alb.bgit.local
functions:
  smoke:
    handler: handlers.smoke
    code: {HOOKS}
    timeout: 10
    environment: {{TEST_URL: "http://127.0.0.1:{test_port}/canary/whoami", WANT_VERSION: "2"}}
  passes:
    handler: handlers.passes
    code: {HOOKS}
    timeout: 10
  vetoes:
    handler: handlers.vetoes
    code: {HOOKS}
    timeout: 10
services:{service("canary", 10, canary)}{service("doomed", 20, doomed)}
"""


@pytest.fixture(scope="module")
def stack():
    port = free_port()
    for project in stack_with_alb(stack_yaml(port), "canary", "doomed"):
        project.test_port = port  # the canary's test listener
        yield project


def view(stack, name: str) -> dict:
    return next(s for s in stack.ecs.services() if s["serviceName"] == name)


def serving(stack, name: str) -> list[dict]:
    tasks = [t for t in stack.ecs.tasks(stopped=False) if t["service"] == name and t["lastStatus"] == "RUNNING"]
    return tasks if view(stack, name)["healthyCount"] == 2 and len(tasks) == 2 else []


class Load:
    """Steady requests to the production listener (~50/s), every status and version recorded."""

    def __init__(self, url: str):
        self.url = url
        self.statuses: list[int] = []
        self.versions: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    self.statuses.append(response.status)
                    self.versions.append(json.loads(response.read())["version"])
            except urllib.error.HTTPError as exc:
                self.statuses.append(exc.code)
            except OSError:
                self.statuses.append(0)
            self._stop.wait(0.02)  # pacing of the load generator

    def __enter__(self) -> "Load":
        self._thread.start()
        assert wait_until(lambda: len(self.statuses) > 20, timeout=15)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    @property
    def failures(self) -> list[int]:
        return [s for s in self.statuses if s != 200]


def codedeploy(stack):
    import boto3

    env = stack.env()
    return boto3.client("codedeploy", endpoint_url=env["AWS_ENDPOINT_URL_CODEDEPLOY"], region_name=env["AWS_REGION"],
                        aws_access_key_id="test", aws_secret_access_key="test")


def deployment(stack, name: str) -> dict:
    return view(stack, name)["blueGreen"]["deployment"]


def test_a_canary_with_passing_hooks_completes_under_load_with_no_failed_request(stack):
    assert wait_until(lambda: serving(stack, "canary"), timeout=60)
    blue = {t["taskId"] for t in serving(stack, "canary")}
    (stack.root / "services" / "canary" / "VERSION").write_text("2\n")
    shares: list[int] = []
    with Load(stack.alb + "/canary/whoami") as load:
        out = stack.devenv("deploy", "canary").stdout
        assert "blue/green deployment d-" in out and "CodeDeployDefault.ECSCanary10Percent5Minutes" in out
        deployment_id = out.split("blue/green deployment ", 1)[1].split()[0]

        def done() -> bool:
            state = deployment(stack, "canary")
            shares.append(state["greenPercent"])
            return state["status"] != "InProgress"

        assert wait_until(done, timeout=90, interval=0.2)
        assert wait_until(lambda: serving(stack, "canary") and all(t["revision"] == 2 for t in serving(stack, "canary")),
                          timeout=30)
        count = len(load.statuses)
        assert wait_until(lambda: len(load.statuses) > count + 20, timeout=10)  # still serving afterwards
    assert deployment(stack, "canary")["status"] == "Succeeded", deployment(stack, "canary")
    assert load.failures == [], f"{len(load.failures)} of {len(load.statuses)} requests failed"
    assert 10 in shares and 100 in shares  # the canary's 10 %, then everything
    assert {"1", "2"} <= set(load.versions) and load.versions[-1] == "2"
    assert not blue & {t["taskId"] for t in serving(stack, "canary")}  # blue terminated
    client = codedeploy(stack)
    info = assert_output_shape("codedeploy", "GetDeployment", client.get_deployment(deploymentId=deployment_id))
    assert info["deploymentInfo"]["status"] == "Succeeded"
    assert info["deploymentInfo"]["deploymentConfigName"] == "CodeDeployDefault.ECSCanary10Percent5Minutes"
    listed = assert_output_shape("codedeploy", "ListDeployments", client.list_deployments(
        applicationName="AppECS-bgit-canary", deploymentGroupName="DgpECS-bgit-canary"))
    assert listed["deployments"] == [deployment_id]
    ps = stack.devenv("ps").stdout
    assert "blue 100%" in ps
    # ELBv2: both target groups, the production rule forwarding by CodeDeploy's weights, green's targets healthy
    import boto3

    env = stack.env()
    elbv2 = boto3.client("elbv2", endpoint_url=env["AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2"],
                         region_name=env["AWS_REGION"], aws_access_key_id="test", aws_secret_access_key="test")
    groups = {g["TargetGroupName"]: g["TargetGroupArn"] for g in assert_output_shape(
        "elbv2", "DescribeTargetGroups", elbv2.describe_target_groups())["TargetGroups"]}
    assert set(groups) == {"canary", "canary-2", "doomed", "doomed-2"}
    [listener] = [item for item in elbv2.describe_listeners(LoadBalancerArn=elbv2.describe_load_balancers()[
        "LoadBalancers"][0]["LoadBalancerArn"])["Listeners"] if item["Port"] == int(stack.alb.rsplit(":", 1)[1])]
    rules = assert_output_shape("elbv2", "DescribeRules", elbv2.describe_rules(
        ListenerArn=listener["ListenerArn"]))["Rules"]
    [canary_rule] = [r for r in rules if r["Conditions"] and r["Conditions"][0]["Values"] == ["/canary/*"]]
    weights = {g["TargetGroupArn"]: g["Weight"] for g in canary_rule["Actions"][0]["ForwardConfig"]["TargetGroups"]}
    assert weights == {groups["canary"]: 0, groups["canary-2"]: 100}
    listeners = assert_output_shape("elbv2", "DescribeListeners", elbv2.describe_listeners(
        LoadBalancerArn=listener["LoadBalancerArn"]))["Listeners"]
    [test_listener] = [item for item in listeners if item["Port"] == stack.test_port]
    [test_rule, _] = assert_output_shape("elbv2", "DescribeRules", elbv2.describe_rules(
        ListenerArn=test_listener["ListenerArn"]))["Rules"]
    assert {g["TargetGroupArn"]: g["Weight"] for g in test_rule["Actions"][0]["ForwardConfig"]["TargetGroups"]} == {
        groups["canary"]: 0, groups["canary-2"]: 1}  # the test listener stays on the new primary
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.test_port}/canary/whoami", timeout=5) as response:
        assert json.loads(response.read())["version"] == "2"
    health = assert_output_shape("elbv2", "DescribeTargetHealth", elbv2.describe_target_health(
        TargetGroupArn=groups["canary-2"]))["TargetHealthDescriptions"]
    assert sorted(h["Target"]["Id"] for h in health if h["TargetHealth"]["State"] == "healthy") == sorted(
        t["address"].split(":")[0] for t in serving(stack, "canary"))


def test_a_failing_hook_rolls_back_and_blue_never_loses_traffic(stack):
    assert wait_until(lambda: serving(stack, "doomed"), timeout=60)
    blue = {t["taskId"] for t in serving(stack, "doomed")}
    (stack.root / "services" / "doomed" / "VERSION").write_text("2\n")
    with Load(stack.alb + "/doomed/whoami") as load:
        out = stack.devenv("deploy", "doomed").stdout
        deployment_id = out.split("blue/green deployment ", 1)[1].split()[0]
        assert wait_until(lambda: deployment(stack, "doomed")["status"] != "InProgress", timeout=90, interval=0.2)
        assert wait_until(lambda: {t["taskId"] for t in stack.ecs.tasks(stopped=False)
                                   if t["service"] == "doomed"} == blue, timeout=30)  # green stopped
        count = len(load.statuses)
        assert wait_until(lambda: len(load.statuses) > count + 20, timeout=10)
    state = deployment(stack, "doomed")
    assert state["status"] == "Failed" and state["rolledBack"]
    assert state["message"] == "BeforeAllowTraffic hook vetoes failed: the hook reported Failed"
    assert load.failures == [], f"{len(load.failures)} of {len(load.statuses)} requests failed"
    assert set(load.versions) == {"1"}  # production traffic never reached green
    info = assert_output_shape("codedeploy", "GetDeployment", codedeploy(stack).get_deployment(
        deploymentId=deployment_id))["deploymentInfo"]
    assert info["status"] == "Failed" and info["errorInformation"]["code"] == "HOOK_EXECUTION_FAILURE"
    assert "rollbackMessage" in info["rollbackInfo"]
    import boto3

    env = stack.env()
    ecs = boto3.client("ecs", endpoint_url=env["AWS_ENDPOINT_URL_ECS"], region_name=env["AWS_REGION"],
                       aws_access_key_id="test", aws_secret_access_key="test")
    def described() -> dict:
        return assert_output_shape("ecs", "DescribeServices", ecs.describe_services(
            cluster="bgit", services=["doomed"]))["services"][0]

    assert described()["deploymentController"] == {"type": "CODE_DEPLOY"}
    assert wait_until(lambda: [s["status"] for s in described()["taskSets"]] == ["PRIMARY"], timeout=10)
    assert described()["taskSets"][0]["taskDefinition"].endswith(":1")
