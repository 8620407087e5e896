"""Blue/green deployments of a CODE_DEPLOY service on a real scheduler running fake tasks: the
replacement task set behind the second target group, the hooks reporting through the CodeDeploy
API (botocore's client, answers checked against its shapes), the production weights as the
deployment configuration moves them, and a rollback that never takes traffic from blue."""

from __future__ import annotations

import asyncio

from devenv.compute.ecs.scheduler import AddressPool, Scheduler, ServiceSpec
from devenv.compute.ecs_aws import codedeploy, ecs
from devenv.compute.ecs_aws.api import AwsApis
from devenv.compute.ecs_aws.arns import Names
from devenv.compute.alb.health import TargetState
from devenv.config.model import BlueGreenConfig, ServiceConfig, ServiceLoadBalancerConfig
from tests.unit.compute.ecs.test_runner import FakeTasks, wait_until_async
from tests.unit.compute.ecs_aws.client import AwsError, call

NAMES = Names(region="eu-west-1", cluster="shop")


class FakeGroup:
    def __init__(self, name: str):
        self.name = name
        self.registered: set[str] = set()

    def register(self, target_id, host, port):
        self.registered.add(target_id)

    async def deregister(self, target_id):
        self.registered.discard(target_id)

    def state(self, target_id):
        return TargetState.HEALTHY if target_id in self.registered else TargetState.UNUSED


class FakeTraffic:
    def __init__(self):
        self.current = {"web": 100, "web-2": 0}
        self.history: list[dict[str, int]] = []
        self.test: list[str] = []

    def set_weights(self, weights):
        self.current = {**self.current, **weights}
        self.history.append(dict(self.current))

    def weights(self):
        return dict(self.current)

    def route_test(self, group):
        self.test.append(group)


class FakeBalancer:
    def __init__(self):
        self.groups = {"web": FakeGroup("web"), "web-2": FakeGroup("web-2")}
        self.web = FakeTraffic()

    def group(self, name):
        return self.groups[name]

    def traffic(self, name):
        return self.web


class ReportingHooks:
    """Hook functions as they run on AWS: each reports its result through the CodeDeploy API."""

    def __init__(self):
        self.apis = None
        self.invoked: list[tuple[str, dict]] = []

    async def invoke(self, function, payload):
        self.invoked.append((function, payload))
        if function == "raises":
            return "raises raised RuntimeError: boom"
        await call(self.apis, "codedeploy", "PutLifecycleEventHookExecutionStatus",
                   deploymentId=payload["DeploymentId"],
                   lifecycleEventHookExecutionId=payload["LifecycleEventHookExecutionId"],
                   status="Failed" if function == "fails" else "Succeeded")
        return None


def run(tmp_path, blue_green: BlueGreenConfig, scenario) -> None:
    async def main():
        runner, balancer, hooks = FakeTasks(), FakeBalancer(), ReportingHooks()
        config = ServiceConfig(command=["serve"], desired_count=2, deployment_controller="CODE_DEPLOY",
                               blue_green=blue_green,
                               load_balancer=ServiceLoadBalancerConfig(priority=1, paths=["/web/*"]))
        scheduler = Scheduler({"web": ServiceSpec("web", config, tmp_path, {})}, state_dir=tmp_path,
                              log_dir=tmp_path, runner=runner, cluster="shop", region="eu-west-1",
                              load_balancer=balancer, hooks=hooks,
                              addresses=AddressPool("127.78.0.2", is_free=lambda ip, port: True))
        hooks.apis = AwsApis({ecs.TARGET_PREFIX: ecs.EcsApi(scheduler, NAMES),
                              codedeploy.TARGET_PREFIX: codedeploy.CodeDeployApi(scheduler, NAMES)})
        await scheduler.start()
        try:
            await scenario(scheduler, hooks.apis, balancer)
        finally:
            await scheduler.stop_all()
    asyncio.run(main())


def live(scheduler, group: str | None = None) -> list:
    service = scheduler.services["web"]
    return [t for t in service.tasks if t.desired_status == "RUNNING"
            and (group is None or service.group_of(t).name == group)]


async def blue_steady(scheduler) -> set[str]:
    assert await wait_until_async(lambda: scheduler.services["web"].primary.state == "COMPLETED"
                                  and len(live(scheduler, "web")) == 2, timeout=5)
    return {t.id for t in live(scheduler)}


async def finished(scheduler) -> str:
    blue_green = scheduler.services["web"].blue_green
    assert await wait_until_async(lambda: blue_green.current is None, timeout=10)
    return blue_green.deployments[-1].status.value


def test_a_canary_with_passing_hooks_shifts_10_percent_then_all_and_terminates_blue(tmp_path):
    config = BlueGreenConfig(deployment_config="CodeDeployDefault.ECSCanary10Percent5Minutes", time_scale=0.002,
                             test_listener_port=9001, hooks={"AfterAllowTestTraffic": "ok", "AfterAllowTraffic": "ok"})

    async def scenario(scheduler, apis, balancer):
        blue = await blue_steady(scheduler)
        service = scheduler.services["web"]
        await scheduler.prepare_revision(service.spec)
        ecs_deployment = service.new_revision("test")
        deployment_id = service.blue_green.deployments[-1].id
        assert deployment_id.startswith("d-") and ecs_deployment.revision == 2
        in_progress = (await call(apis, "codedeploy", "GetDeployment", deploymentId=deployment_id))["deploymentInfo"]
        assert in_progress["status"] == "InProgress"
        assert in_progress["deploymentConfigName"] == "CodeDeployDefault.ECSCanary10Percent5Minutes"
        # during the canary: both task sets run, two task sets in DescribeServices
        assert await wait_until_async(lambda: balancer.web.current == {"web": 90, "web-2": 10}, timeout=5)
        [described] = (await call(apis, "ecs", "DescribeServices", cluster="shop", services=["web"]))["services"]
        assert described["deploymentController"] == {"type": "CODE_DEPLOY"}
        assert sorted(s["status"] for s in described["taskSets"]) == ["ACTIVE", "PRIMARY"]
        assert {t.id for t in live(scheduler, "web")} == blue and len(live(scheduler, "web-2")) == 2
        assert await finished(scheduler) == "Succeeded"
        assert balancer.web.history == [{"web": 90, "web-2": 10}, {"web": 0, "web-2": 100}]
        assert balancer.web.test == ["web-2"]  # green from AllowTestTraffic on; it is the primary now
        assert [f for f, _ in balancer_hooks(scheduler)] == ["ok", "ok"]
        assert await wait_until_async(lambda: not live(scheduler, "web"), timeout=5)  # blue terminated
        assert all(t.revision == 2 for t in live(scheduler)) and len(live(scheduler)) == 2
        done = (await call(apis, "codedeploy", "GetDeployment", deploymentId=deployment_id))["deploymentInfo"]
        assert done["status"] == "Succeeded" and "completeTime" in done and "errorInformation" not in done
        assert service.to_json()["revision"] == 2
        listed = await call(apis, "codedeploy", "ListDeployments", applicationName="AppECS-shop-web",
                            deploymentGroupName="DgpECS-shop-web", includeOnlyStatuses=["Succeeded"])
        assert listed["deployments"] == [deployment_id]
        [described] = (await call(apis, "ecs", "DescribeServices", cluster="shop", services=["web"]))["services"]
        assert await wait_until_async(lambda: len(service.blue_green.sets) == 1, timeout=5)
        [described] = (await call(apis, "ecs", "DescribeServices", cluster="shop", services=["web"]))["services"]
        [only] = described["taskSets"]
        assert only["status"] == "PRIMARY" and only["externalId"] == deployment_id
        assert only["taskDefinition"].endswith("task-definition/web:2") and only["runningCount"] == 2

    run(tmp_path, config, scenario)


def balancer_hooks(scheduler):
    return scheduler.services["web"].blue_green.hooks.invoked


def test_a_failing_before_allow_traffic_hook_rolls_back_and_blue_keeps_all_traffic(tmp_path):
    config = BlueGreenConfig(deployment_config="CodeDeployDefault.ECSCanary10Percent5Minutes", time_scale=0.002,
                             hooks={"BeforeAllowTraffic": "fails"})

    async def scenario(scheduler, apis, balancer):
        blue = await blue_steady(scheduler)
        service = scheduler.services["web"]
        await scheduler.prepare_revision(service.spec)
        service.new_revision("test")
        deployment_id = service.blue_green.deployments[-1].id
        assert await finished(scheduler) == "Failed"
        assert all(weights["web-2"] == 0 for weights in balancer.web.history)  # green never got production traffic
        assert await wait_until_async(lambda: not live(scheduler, "web-2"), timeout=5)  # green removed
        assert {t.id for t in live(scheduler)} == blue  # blue untouched
        info = (await call(apis, "codedeploy", "GetDeployment", deploymentId=deployment_id))["deploymentInfo"]
        assert info["status"] == "Failed"
        assert info["errorInformation"] == {"code": "HOOK_EXECUTION_FAILURE",
                                            "message": "BeforeAllowTraffic hook fails failed: the hook reported Failed"}
        assert "Rolled back" in info["rollbackInfo"]["rollbackMessage"]
        assert service.to_json()["revision"] == 1
        try:
            await call(apis, "codedeploy", "PutLifecycleEventHookExecutionStatus", deploymentId=deployment_id,
                       lifecycleEventHookExecutionId=balancer_hooks(scheduler)[0][1]["LifecycleEventHookExecutionId"],
                       status="Succeeded")
            raise AssertionError("a completed hook accepted another status")
        except AwsError as error:
            assert error.code == "LifecycleEventAlreadyCompletedException"
        # the next deployment starts afresh from blue
        await scheduler.prepare_revision(service.spec)
        service.new_revision("again")
        assert service.blue_green.current is not None and service.blue_green.current.original.revision == 1

    run(tmp_path, config, scenario)


def test_a_hook_that_raises_fails_the_deployment(tmp_path):
    config = BlueGreenConfig(time_scale=0.002, hooks={"AfterInstall": "raises"})

    async def scenario(scheduler, apis, balancer):
        await blue_steady(scheduler)
        service = scheduler.services["web"]
        await scheduler.prepare_revision(service.spec)
        service.new_revision("test")
        assert await finished(scheduler) == "Failed"
        assert "AfterInstall hook raises failed: raises raised RuntimeError: boom" in \
            service.blue_green.deployments[-1].machine.message
        assert balancer.web.history == [{"web": 100, "web-2": 0}]

    run(tmp_path, config, scenario)


def test_unknown_deployments_and_executions_get_codedeploy_s_errors(tmp_path):
    async def scenario(scheduler, apis, balancer):
        for deployment_id, code in (("d-NOPE12345", "DeploymentDoesNotExistException"),
                                    ("nonsense", "InvalidDeploymentIdException")):
            try:
                await call(apis, "codedeploy", "GetDeployment", deploymentId=deployment_id)
                raise AssertionError(deployment_id)
            except AwsError as error:
                assert error.code == code
        assert (await call(apis, "codedeploy", "ListApplications"))["applications"] == ["AppECS-shop-web"]
        assert (await call(apis, "codedeploy", "ListDeployments"))["deployments"] == []

    run(tmp_path, BlueGreenConfig(), scenario)
