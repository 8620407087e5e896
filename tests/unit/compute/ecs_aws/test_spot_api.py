"""Capacity providers and Fargate Spot interruptions over a real scheduler running fake
tasks: tasks placed by the strategy, what the ECS API and the EventBridge events say of
them (answers checked against botocore's output shapes), interruptions by hand and at random."""

from __future__ import annotations

import asyncio
import json
import time

from devenv.compute.ecs.capacity import FARGATE, FARGATE_SPOT
from devenv.compute.ecs.rollout import LastStatus
from devenv.compute.ecs.scheduler import AddressPool, Scheduler, ServiceSpec
from devenv.compute.ecs_aws import ecs
from devenv.compute.ecs_aws.api import AwsApis
from devenv.compute.ecs_aws.arns import Names
from devenv.compute.ecs_aws.events import EcsEventWatcher
from devenv.config.model import CapacityProviderStrategyItem, FargateSpotConfig, ServiceConfig
from tests.unit.compute.ecs.test_runner import FakeTasks, wait_until_async
from tests.unit.compute.ecs_aws.client import call

NAMES = Names(region="eu-west-1", cluster="shop")
# AWS's example: base 1 on FARGATE, then 1 FARGATE for every 4 FARGATE_SPOT
STRATEGY = [CapacityProviderStrategyItem(capacity_provider=FARGATE, weight=1, base=1),
            CapacityProviderStrategyItem(capacity_provider=FARGATE_SPOT, weight=4)]


def run(tmp_path, scenario, *, desired: int = 6, spot: FargateSpotConfig = FargateSpotConfig(), draw=None):
    async def main():
        runner = FakeTasks()
        fleet = ServiceConfig(command=["serve"], desired_count=desired, capacity_provider_strategy=STRATEGY)
        plain = ServiceConfig(command=["serve"], desired_count=1)
        scheduler = Scheduler({"fleet": ServiceSpec("fleet", fleet, tmp_path, {}),
                               "plain": ServiceSpec("plain", plain, tmp_path, {})},
                              state_dir=tmp_path, log_dir=tmp_path, runner=runner, cluster="shop",
                              region="eu-west-1", spot=spot, draw=draw,
                              addresses=AddressPool("127.78.0.2", is_free=lambda ip, port: True))
        apis = AwsApis({ecs.TARGET_PREFIX: ecs.EcsApi(scheduler, NAMES)})
        await scheduler.start()
        try:
            await scenario(scheduler, apis, runner)
        finally:
            await scheduler.stop_all()
    asyncio.run(main())


def wanted(scheduler, service: str = "fleet") -> list:
    return [t for t in scheduler.services[service].tasks
            if t.status is LastStatus.RUNNING and t.desired_status == "RUNNING"]


def providers(tasks) -> dict[str, int]:
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.capacity_provider] = counts.get(task.capacity_provider, 0) + 1
    return counts


async def described_tasks(apis, service: str) -> list[dict]:
    arns = (await call(apis, "ecs", "ListTasks", cluster="shop", serviceName=service))["taskArns"]
    return (await call(apis, "ecs", "DescribeTasks", cluster="shop", tasks=arns))["tasks"]


def test_tasks_are_placed_by_the_strategy_and_the_api_names_their_provider(tmp_path):
    async def scenario(scheduler, apis, runner):
        assert await wait_until_async(lambda: len(wanted(scheduler)) == 6 and wanted(scheduler, "plain"), timeout=5)
        assert providers(wanted(scheduler)) == {FARGATE: 2, FARGATE_SPOT: 4}
        services = (await call(apis, "ecs", "DescribeServices", cluster="shop", services=["fleet", "plain"]))["services"]
        fleet, plain = services
        assert fleet["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 1},
                                                     {"capacityProvider": "FARGATE_SPOT", "weight": 4, "base": 0}]
        assert "launchType" not in fleet and fleet["deployments"][0]["capacityProviderStrategy"]
        assert plain["launchType"] == "FARGATE" and "capacityProviderStrategy" not in plain
        own = {t.id: t.capacity_provider for t in wanted(scheduler)}
        described = await described_tasks(apis, "fleet")
        assert {t["taskArn"].rsplit("/", 1)[1]: t["capacityProviderName"] for t in described} == own
        [lone] = await described_tasks(apis, "plain")
        assert "capacityProviderName" not in lone and lone["launchType"] == "FARGATE"
        [cluster] = (await call(apis, "ecs", "DescribeClusters", clusters=["shop"]))["clusters"]
        assert cluster["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
        view = next(s for s in scheduler.services_json() if s["serviceName"] == "fleet")
        assert view["capacityProviders"] == {FARGATE: 2, FARGATE_SPOT: 4}
        assert {t["capacityProvider"] for t in scheduler.tasks_json() if t["service"] == "plain"} == {FARGATE}
    run(tmp_path, scenario)


def test_an_interruption_stops_spot_tasks_as_aws_does_and_replaces_them_on_spot(tmp_path):
    async def scenario(scheduler, apis, runner):
        assert await wait_until_async(lambda: len(wanted(scheduler)) == 6, timeout=5)
        fleet = scheduler.services["fleet"]
        base = {t.id for t in wanted(scheduler) if t.capacity_provider == FARGATE}
        watcher = EcsEventWatcher(NAMES)
        watcher.changes(scheduler, time.time())  # what ran before
        interrupted = fleet.interrupt(2)
        assert len(interrupted) == 2 and all(t.capacity_provider == FARGATE_SPOT for t in interrupted)
        assert interrupted == sorted(fleet.spot_tasks() + interrupted, key=lambda t: t.created)[:2]  # the oldest
        assert await wait_until_async(lambda: all(t.status is LastStatus.STOPPED for t in interrupted)
                                      and len(wanted(scheduler)) == 6, timeout=5)
        assert {t.id for t in interrupted} <= set(runner.terminated)  # SIGTERM (then SIGKILL), as a stop
        assert providers(wanted(scheduler)) == {FARGATE: 2, FARGATE_SPOT: 4}  # replaced on Spot
        assert {t.id for t in wanted(scheduler) if t.capacity_provider == FARGATE} == base  # base untouched
        assert fleet.primary.failed_tasks == 0  # an interruption is no deployment failure
        # The notice reached EventBridge as AWS sends it, even though the tasks moved on since.
        entries = watcher.changes(scheduler, time.time())
        for task in interrupted:
            details = [json.loads(e["Detail"]) for e in entries if e["Resources"] == [NAMES.task_arn(task.id)]]
            notice, last = details[0], details[-1]
            assert (notice["lastStatus"], notice["desiredStatus"], notice["stopCode"], notice["stoppedReason"]) == (
                "RUNNING", "STOPPED", "SpotInterruption", "Your Spot Task was interrupted.")
            assert notice["capacityProviderName"] == "FARGATE_SPOT" and "stoppedAt" not in notice
            assert (last["lastStatus"], last["stopCode"]) == ("STOPPED", "SpotInterruption")
        [gone] = (await call(apis, "ecs", "DescribeTasks", cluster="shop", tasks=[interrupted[0].id]))["tasks"]
        assert (gone["lastStatus"], gone["stopCode"], gone["stoppedReason"]) == (
            "STOPPED", "SpotInterruption", "Your Spot Task was interrupted.")
        stopped = [t for t in scheduler.tasks_json() if t["taskId"] == interrupted[0].id]
        assert stopped[0]["stopCode"] == "SpotInterruption"
        # More than it runs: every Spot task, no more; a plain service has none.
        assert len(fleet.interrupt(10)) == 4
        assert scheduler.services["plain"].interrupt(1) == []
    run(tmp_path, scenario)


def test_random_interruptions_hit_spot_tasks_only(tmp_path):
    always = FargateSpotConfig(warning=5, interruptions_per_task_hour=3600)

    async def scenario(scheduler, apis, runner):
        fleet = scheduler.services["fleet"]
        assert await wait_until_async(lambda: any(t.stop_code == "SpotInterruption" for t in fleet.stopped),
                                      timeout=5)
        hit = [t for t in list(fleet.tasks) + list(fleet.stopped) if t.stop_code == "SpotInterruption"]
        assert hit and all(t.capacity_provider == FARGATE_SPOT for t in hit)
        assert not any(t.stop_code for t in fleet.tasks + list(fleet.stopped) if t.capacity_provider == FARGATE)
    run(tmp_path, scenario, desired=3, spot=always, draw=lambda: 0.0)


def test_scale_in_keeps_the_base_on_fargate(tmp_path):
    async def scenario(scheduler, apis, runner):
        fleet = scheduler.services["fleet"]
        assert await wait_until_async(lambda: len(wanted(scheduler)) == 6, timeout=5)
        fleet.set_desired(2)
        assert await wait_until_async(lambda: len(wanted(scheduler)) == 2
                                      and len([t for t in fleet.tasks if t.status is not LastStatus.STOPPED]) == 2,
                                      timeout=5)
        assert providers(wanted(scheduler)) == {FARGATE: 1, FARGATE_SPOT: 1}
        fleet.set_desired(1)
        assert await wait_until_async(lambda: len([t for t in fleet.tasks if t.status is not LastStatus.STOPPED]) == 1,
                                      timeout=5)
        assert providers(wanted(scheduler)) == {FARGATE: 1}
    run(tmp_path, scenario)
