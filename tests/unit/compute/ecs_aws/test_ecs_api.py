"""The ECS API over a real scheduler running fake tasks: clusters, services with their
deployments and events as AWS words them, tasks with their ENI address, task definitions,
UpdateService and StopTask, every answer parsed by botocore and checked against its shape."""

from __future__ import annotations

import asyncio

import pytest

from devenv.compute.ecs.rollout import LastStatus
from devenv.compute.ecs.scheduler import AddressPool, Scheduler, ServiceSpec
from devenv.compute.ecs_aws import autoscaling, ecs
from devenv.compute.ecs_aws.api import AwsApis
from devenv.compute.ecs_aws.arns import Names
from devenv.config.model import AutoscalingConfig, ServiceConfig
from tests.unit.compute.ecs.test_runner import FakeTasks, wait_until_async
from tests.unit.compute.ecs_aws.client import AwsError, call

NAMES = Names(region="eu-west-1", cluster="shop")


def stack(tmp_path, runner: FakeTasks) -> tuple[Scheduler, AwsApis]:
    web = ServiceConfig(command=["serve"], desired_count=2, environment={"MODE": "x"},
                        secrets={"DATABASE_URL": "postgres.url"})
    scaled = ServiceConfig(command=["serve"], desired_count=1,
                           autoscaling=AutoscalingConfig(min=1, max=3, target_cpu=50))
    scheduler = Scheduler({"web": ServiceSpec("web", web, tmp_path, {}),
                           "scaled": ServiceSpec("scaled", scaled, tmp_path, {})},
                          state_dir=tmp_path, log_dir=tmp_path, runner=runner, cluster="shop", region="eu-west-1",
                          addresses=AddressPool("127.77.0.2", is_free=lambda ip, port: True))
    apis = AwsApis({ecs.TARGET_PREFIX: ecs.EcsApi(scheduler, NAMES),
                    autoscaling.TARGET_PREFIX: autoscaling.AutoscalingApi(scheduler, NAMES)})
    return scheduler, apis


def run(tmp_path, scenario) -> None:
    async def main():
        runner = FakeTasks()
        scheduler, apis = stack(tmp_path, runner)
        await scheduler.start()
        try:
            await scenario(scheduler, apis, runner)
        finally:
            await scheduler.stop_all()
    asyncio.run(main())


async def steady(apis, *services: str) -> list[dict]:
    """Waits as the services-stable waiter does: one deployment, running == desired."""
    async def described():
        return (await call(apis, "ecs", "DescribeServices", cluster="shop", services=list(services)))["services"]

    found: list[dict] = []

    def stable() -> bool:
        return bool(found) and all(len(s["deployments"]) == 1 and s["runningCount"] == s["desiredCount"]
                                   and s["deployments"][0]["rolloutState"] == "COMPLETED" for s in found[-1])

    deadline = asyncio.get_running_loop().time() + 5
    while not stable():
        assert asyncio.get_running_loop().time() < deadline, found[-1:]
        found.append(await described())
        await asyncio.sleep(0.02)
    return found[-1]


def test_the_cluster_is_the_stack_and_lists_its_services(tmp_path):
    async def scenario(scheduler, apis, runner):
        await steady(apis, "web", "scaled")
        assert (await call(apis, "ecs", "ListClusters"))["clusterArns"] == [
            "arn:aws:ecs:eu-west-1:123456789012:cluster/shop"]
        [cluster] = (await call(apis, "ecs", "DescribeClusters", clusters=["shop"]))["clusters"]
        assert (cluster["clusterName"], cluster["runningTasksCount"], cluster["activeServicesCount"]) == ("shop", 3, 2)
        missing = await call(apis, "ecs", "DescribeClusters", clusters=["other"])
        assert missing["failures"][0]["reason"] == "MISSING" and missing["clusters"] == []
        listed = await call(apis, "ecs", "ListServices", cluster="shop", maxResults=1)
        rest = await call(apis, "ecs", "ListServices", cluster="shop", nextToken=listed["nextToken"])
        assert listed["serviceArns"] + rest["serviceArns"] == [
            "arn:aws:ecs:eu-west-1:123456789012:service/shop/web", "arn:aws:ecs:eu-west-1:123456789012:service/shop/scaled"]
        assert "nextToken" not in rest
        with pytest.raises(AwsError) as error:
            await call(apis, "ecs", "ListServices", cluster="elsewhere")
        assert (error.value.code, error.value.message) == ("ClusterNotFoundException", "Cluster not found.")
    run(tmp_path, scenario)


def test_a_steady_service_has_one_completed_deployment_and_aws_worded_events(tmp_path):
    async def scenario(scheduler, apis, runner):
        [web] = await steady(apis, "web")
        [deployment] = web["deployments"]
        assert (deployment["status"], deployment["rolloutState"], deployment["runningCount"]) == ("PRIMARY", "COMPLETED", 2)
        assert web["taskDefinition"] == deployment["taskDefinition"] == \
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1"
        messages = [e["message"] for e in web["events"]]
        assert messages[0] == "(service web) has reached a steady state."  # newest first
        assert messages[1] == f"(service web) (deployment {deployment['id']}) deployment completed."
        started = [m for m in messages if "has started 1 tasks" in m]
        task_ids = {t.id for t in scheduler.services["web"].tasks}
        assert sorted(started) == sorted(f"(service web) has started 1 tasks: (task {t})." for t in task_ids)
        failures = (await call(apis, "ecs", "DescribeServices", cluster="shop", services=["nope"]))["failures"]
        assert failures == [{"arn": "arn:aws:ecs:eu-west-1:123456789012:service/shop/nope", "reason": "MISSING"}]
    run(tmp_path, scenario)


def test_tasks_carry_their_address_on_the_eni_and_stop_task_replaces_one(tmp_path):
    async def scenario(scheduler, apis, runner):
        await steady(apis, "web")
        arns = (await call(apis, "ecs", "ListTasks", cluster="shop", serviceName="web"))["taskArns"]
        tasks = (await call(apis, "ecs", "DescribeTasks", cluster="shop", tasks=arns))["tasks"]
        by_id = {t.id: t for t in scheduler.services["web"].tasks}
        assert len(tasks) == 2
        for task in tasks:
            own = by_id[task["taskArn"].rsplit("/", 1)[1]]
            details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
            assert details["privateIPv4Address"] == own.ip
            assert task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"] == own.ip
            assert (task["lastStatus"], task["desiredStatus"], task["group"]) == ("RUNNING", "RUNNING", "service:web")
            assert task["taskDefinitionArn"].endswith("task-definition/web:1")
        victim = arns[0]
        stopped = (await call(apis, "ecs", "StopTask", cluster="shop", task=victim))["task"]
        assert (stopped["desiredStatus"], stopped["stoppedReason"], stopped["stopCode"]) == (
            "STOPPED", "Task stopped by user", "UserInitiated")
        victim_id = victim.rsplit("/", 1)[1]
        assert await wait_until_async(lambda: scheduler.task(victim_id).status is LastStatus.STOPPED, timeout=5)
        [web] = await steady(apis, "web")
        assert web["runningCount"] == 2
        now = (await call(apis, "ecs", "DescribeTasks", cluster="shop", tasks=[victim_id, "gone"]))
        assert now["tasks"][0]["lastStatus"] == "STOPPED" and now["tasks"][0]["stoppedAt"]
        assert now["failures"][0]["reason"] == "MISSING"
        assert victim in (await call(apis, "ecs", "ListTasks", cluster="shop", desiredStatus="STOPPED"))["taskArns"]
        assert any(e["message"] == f"(service web) has stopped 1 running tasks: (task {victim_id})."
                   for e in web["events"])
        given = (await call(apis, "ecs", "StopTask", cluster="shop", task=arns[1], reason="rotating"))["task"]
        assert given["stoppedReason"] == "rotating"
        with pytest.raises(AwsError) as error:
            await call(apis, "ecs", "StopTask", cluster="shop", task="nope")
        assert error.value.code == "InvalidParameterException"
    run(tmp_path, scenario)


def test_force_new_deployment_rolls_a_new_task_definition_revision(tmp_path):
    async def scenario(scheduler, apis, runner):
        [before] = await steady(apis, "web")
        old = set(runner.launched)
        updated = (await call(apis, "ecs", "UpdateService", cluster="shop", service="web",
                              forceNewDeployment=True))["service"]
        primary = updated["deployments"][0]
        assert (primary["status"], primary["rolloutState"]) == ("PRIMARY", "IN_PROGRESS")
        assert primary["taskDefinition"].endswith("task-definition/web:2")
        assert updated["deployments"][1]["status"] == "ACTIVE"  # the old one, while its tasks run
        [after] = await steady(apis, "web")
        assert after["deployments"][0]["id"] == primary["id"]
        arns = (await call(apis, "ecs", "ListTasks", cluster="shop", serviceName="web"))["taskArns"]
        assert not {a.rsplit("/", 1)[1] for a in arns} & old
        definitions = (await call(apis, "ecs", "ListTaskDefinitions", familyPrefix="web"))["taskDefinitionArns"]
        assert [d.rsplit("/", 1)[1] for d in definitions] == ["web:1", "web:2"]
        latest = (await call(apis, "ecs", "DescribeTaskDefinition", taskDefinition="web"))["taskDefinition"]
        assert (latest["family"], latest["revision"], latest["networkMode"]) == ("web", 2, "awsvpc")
        container = latest["containerDefinitions"][0]
        assert container["environment"] == [{"name": "MODE", "value": "x"}]
        assert container["secrets"] == [{"name": "DATABASE_URL", "valueFrom": "postgres.url"}]  # named, never given
        back = (await call(apis, "ecs", "UpdateService", cluster="shop", service="web", taskDefinition="web:1"))
        assert back["service"]["taskDefinition"].endswith("web:1")
        await steady(apis, "web")
        with pytest.raises(AwsError) as error:
            await call(apis, "ecs", "DescribeTaskDefinition", taskDefinition="web:9")
        assert error.value.code == "ClientException"
    run(tmp_path, scenario)


def test_update_service_desired_count_is_held_within_autoscaling_bounds(tmp_path):
    async def scenario(scheduler, apis, runner):
        await steady(apis, "scaled")
        service = (await call(apis, "ecs", "UpdateService", cluster="shop", service="scaled", desiredCount=9))["service"]
        assert service["desiredCount"] == 3  # the scalable target's max, as `devenv scale` does
        [scaled] = await steady(apis, "scaled")
        assert scaled["runningCount"] == 3
        with pytest.raises(AwsError) as error:
            await call(apis, "ecs", "UpdateService", cluster="shop", service="ghost", desiredCount=1)
        assert error.value.code == "ServiceNotFoundException"
    run(tmp_path, scenario)


def test_register_scalable_target_moves_min_live_and_logs_an_activity(tmp_path):
    async def scenario(scheduler, apis, runner):
        await steady(apis, "scaled")
        targets = (await call(apis, "application-autoscaling", "DescribeScalableTargets",
                              ServiceNamespace="ecs"))["ScalableTargets"]
        assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [
            ("service/shop/scaled", 1, 3)]
        await call(apis, "application-autoscaling", "RegisterScalableTarget", ServiceNamespace="ecs",
                   ResourceId="service/shop/scaled", ScalableDimension="ecs:service:DesiredCount", MinCapacity=2)
        [scaled] = await steady(apis, "scaled")
        assert (scaled["desiredCount"], scaled["runningCount"]) == (2, 2)
        [activity] = (await call(apis, "application-autoscaling", "DescribeScalingActivities",
                                 ServiceNamespace="ecs", ResourceId="service/shop/scaled"))["ScalingActivities"]
        assert (activity["Description"], activity["Cause"], activity["StatusCode"]) == (
            "Setting desired count to 2.", "minimum capacity was set to 2", "Successful")
        [policy] = (await call(apis, "application-autoscaling", "DescribeScalingPolicies",
                               ServiceNamespace="ecs"))["ScalingPolicies"]
        tracking = policy["TargetTrackingScalingPolicyConfiguration"]
        assert (tracking["TargetValue"], policy["PolicyType"]) == (50.0, "TargetTrackingScaling")
        assert policy["Alarms"][0]["AlarmName"].startswith("TargetTracking-service/shop/scaled-AlarmHigh-")
        with pytest.raises(AwsError) as error:
            await call(apis, "application-autoscaling", "RegisterScalableTarget", ServiceNamespace="ecs",
                       ResourceId="service/shop/scaled", ScalableDimension="ecs:service:DesiredCount",
                       MinCapacity=5, MaxCapacity=4)
        assert error.value.code == "ValidationException"
    run(tmp_path, scenario)


def test_a_scaling_activity_names_the_alarm_that_triggered_the_policy():
    from devenv.compute.ecs.autoscaling import ScalingCause
    from devenv.compute.ecs.scheduler import ScalingActivity

    cause = autoscaling.activity_cause(NAMES, "scaled", ScalingActivity("a", 0.0, 1, 2, ScalingCause.ALARM_HIGH))
    assert cause == (f"monitor alarm {NAMES.alarm_name('scaled', True)} in state ALARM triggered policy "
                     "scaled-cpu-target-tracking")
    assert NAMES.alarm_name("scaled", True).startswith("TargetTracking-service/shop/scaled-AlarmHigh-")


def test_an_unknown_operation_is_refused_in_aws_shape(tmp_path):
    async def scenario(scheduler, apis, runner):
        with pytest.raises(AwsError) as error:
            await call(apis, "ecs", "CreateCluster", clusterName="x")
        assert error.value.code == "UnknownOperationException"
    run(tmp_path, scenario)


def test_ecs_events_for_eventbridge_follow_the_scheduler_state(tmp_path):
    import json
    import time

    from devenv.compute.ecs_aws.events import EcsEventWatcher

    async def scenario(scheduler, apis, runner):
        watcher = EcsEventWatcher(NAMES)
        seen: list[dict] = []

        def look() -> bool:
            seen.extend(watcher.changes(scheduler, time.time()))
            return len([e for e in seen if e["DetailType"] == "ECS Service Action"]) == 2  # both services

        assert await wait_until_async(look, timeout=5)
        kinds = {(e["DetailType"], json.loads(e["Detail"]).get("eventName")) for e in seen}
        assert {("ECS Deployment State Change", "SERVICE_DEPLOYMENT_IN_PROGRESS"),
                ("ECS Deployment State Change", "SERVICE_DEPLOYMENT_COMPLETED"),
                ("ECS Service Action", "SERVICE_STEADY_STATE")} <= kinds
        running = [json.loads(e["Detail"]) for e in seen if e["DetailType"] == "ECS Task State Change"
                   and json.loads(e["Detail"])["lastStatus"] == "RUNNING"]
        assert len({d["taskArn"] for d in running}) == 3
        detail = running[0]
        assert detail["updatedAt"].endswith("Z") and detail["attachments"][0]["type"] == "eni"
        assert all(e["Source"] == "aws.ecs" and e["EventBusName"] == "default" for e in seen)
        assert watcher.changes(scheduler, time.time()) == []  # nothing new, nothing sent
        victim = scheduler.services["web"].tasks[0]
        scheduler.services["web"].stop_task(victim, "Task stopped by user", "UserInitiated")
        changed = watcher.changes(scheduler, time.time())
        [stopping] = [json.loads(e["Detail"]) for e in changed if e["Resources"] == [NAMES.task_arn(victim.id)]]
        assert (stopping["desiredStatus"], stopping["stopCode"]) == ("STOPPED", "UserInitiated")
    run(tmp_path, scenario)


def test_every_kind_of_service_event_has_aws_wording():
    from devenv.compute.ecs.scheduler import EventKind, ServiceEvent

    for kind in EventKind:
        message = ecs.event_message(NAMES, "web", ServiceEvent("e", 0.0, kind, ("t1",), "ecs-svc/1"))
        assert message.startswith("(service web) ") and "{" not in message
    drained = ecs.event_message(NAMES, "web", ServiceEvent("e", 0.0, EventKind.DEREGISTERED_TARGETS, ("t1",)))
    assert drained == f"(service web) deregistered 1 targets in (target-group {NAMES.target_group_arn('web')})"
