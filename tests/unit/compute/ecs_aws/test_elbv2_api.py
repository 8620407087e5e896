"""The ELBv2 API over the internal ALB's config and its target groups' state: the load
balancer, listener, rules by priority, target groups, and target health as AWS words it."""

from __future__ import annotations

import asyncio

import pytest

from devenv.compute.alb.balancer import TargetSnapshot
from devenv.compute.alb.health import Reason, TargetState
from devenv.compute.ecs_aws.api import AwsApis
from devenv.compute.ecs_aws.arns import Names
from devenv.compute.ecs_aws.elbv2 import Elbv2Api
from devenv.config.model import LoadBalancerConfig, ServiceLoadBalancerConfig
from tests.unit.compute.ecs_aws.client import AwsError, call

NAMES = Names(region="us-east-1", cluster="shop")


def snapshot(target_id, host, state, reason=None, description=""):
    return TargetSnapshot(target_id=target_id, host=host, port=8000, state=state, in_flight=0,
                          consecutive_successes=0, consecutive_failures=0, reason=reason, description=description,
                          last_failure="")


class FakeGroup:
    def __init__(self, targets):
        self.targets = targets

    def described(self):
        return self.targets


class FakeBalancer:
    port = 8080

    def __init__(self, groups):
        self.groups = groups

    def group(self, service):
        return self.groups[service]


TARGETS = [snapshot("a", "127.9.0.2", TargetState.HEALTHY),
           snapshot("b", "127.9.0.3", TargetState.UNHEALTHY, Reason.RESPONSE_CODE_MISMATCH,
                    "Health checks failed with these codes: [500]"),
           snapshot("c", "127.9.0.4", TargetState.DRAINING, Reason.DEREGISTRATION_IN_PROGRESS,
                    "Target deregistration is in progress"),
           snapshot("d", "127.9.0.5", TargetState.INITIAL, Reason.INITIAL_HEALTH_CHECKING,
                    "Initial health checks in progress")]


def apis() -> AwsApis:
    orders = ServiceLoadBalancerConfig(paths=["/orders/*"], priority=20, deregistration_delay=0.5, slow_start=45,
                                       health_check={"path": "/orders/health", "interval": 0.5})
    users = ServiceLoadBalancerConfig(hosts=["users.local"], priority=10)
    config = LoadBalancerConfig(hostname="internal-alb.shop.local", rules=[
        {"priority": 5, "paths": ["/old/*"], "redirect": {"status_code": "HTTP_301", "path": "/new"}},
        {"priority": 30, "paths": ["/split"], "forward": {"orders": 3, "users": 1},
         "target_group_stickiness": {"duration": 600}}])
    balancer = FakeBalancer({"orders": FakeGroup(TARGETS), "users": FakeGroup([])})
    api = Elbv2Api(balancer, config, {"orders": orders, "users": users}, NAMES, created=1.0e9,
                   ports={"orders": 8000, "users": 8000})
    return AwsApis({}, {"elbv2": api})


def test_the_load_balancer_its_listener_and_rules_by_priority():
    async def scenario():
        handler = apis()
        [lb] = (await call(handler, "elbv2", "DescribeLoadBalancers"))["LoadBalancers"]
        assert (lb["DNSName"], lb["Scheme"], lb["Type"], lb["State"]["Code"]) == (
            "internal-alb.shop.local", "internal", "application", "active")
        [listener] = (await call(handler, "elbv2", "DescribeListeners",
                                 LoadBalancerArn=lb["LoadBalancerArn"]))["Listeners"]
        assert (listener["Port"], listener["Protocol"]) == (8080, "HTTP")
        rules = (await call(handler, "elbv2", "DescribeRules", ListenerArn=listener["ListenerArn"]))["Rules"]
        assert [r["Priority"] for r in rules] == ["5", "10", "20", "30", "default"]
        assert rules[0]["Actions"][0]["RedirectConfig"]["StatusCode"] == "HTTP_301"
        assert rules[1]["Conditions"][0]["HostHeaderConfig"]["Values"] == ["users.local"]
        assert rules[2]["Actions"][0]["TargetGroupArn"] == NAMES.target_group_arn("orders")
        assert [g["Weight"] for g in rules[3]["Actions"][0]["ForwardConfig"]["TargetGroups"]] == [3, 1]
        assert rules[3]["Actions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"] == {
            "Enabled": True, "DurationSeconds": 600}
        assert rules[2]["Actions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"] == {"Enabled": False}
        assert rules[4]["IsDefault"] and rules[4]["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
        with pytest.raises(AwsError) as error:
            await call(handler, "elbv2", "DescribeLoadBalancers", Names=["other"])
        assert error.value.code == "LoadBalancerNotFound"
    asyncio.run(scenario())


def test_target_groups_and_target_health_as_aws_words_it():
    async def scenario():
        handler = apis()
        groups = (await call(handler, "elbv2", "DescribeTargetGroups"))["TargetGroups"]
        orders = next(g for g in groups if g["TargetGroupName"] == "orders")
        assert (orders["HealthCheckPath"], orders["HealthCheckIntervalSeconds"], orders["TargetType"]) == (
            "/orders/health", 5, "ip")  # 0.5 s locally: shown as ELBv2's least interval
        health = (await call(handler, "elbv2", "DescribeTargetHealth",
                             TargetGroupArn=orders["TargetGroupArn"]))["TargetHealthDescriptions"]
        shown = [(h["Target"]["Id"], h["TargetHealth"]["State"], h["TargetHealth"].get("Reason")) for h in health]
        assert shown == [("127.9.0.2", "healthy", None), ("127.9.0.3", "unhealthy", "Target.ResponseCodeMismatch"),
                         ("127.9.0.4", "draining", "Target.DeregistrationInProgress"),
                         ("127.9.0.5", "initial", "Elb.InitialHealthChecking")]
        assert health[1]["TargetHealth"]["Description"] == "Health checks failed with these codes: [500]"
        one = (await call(handler, "elbv2", "DescribeTargetHealth", TargetGroupArn=orders["TargetGroupArn"],
                          Targets=[{"Id": "127.9.0.3", "Port": 8000}, {"Id": "10.0.0.1"}]))["TargetHealthDescriptions"]
        assert [h["TargetHealth"]["State"] for h in one] == ["unhealthy", "unused"]
        attributes = (await call(handler, "elbv2", "DescribeTargetGroupAttributes",
                                 TargetGroupArn=orders["TargetGroupArn"]))["Attributes"]
        assert {"Key": "deregistration_delay.timeout_seconds", "Value": "1"} in attributes
        assert {"Key": "slow_start.duration_seconds", "Value": "45"} in attributes
        users = next(g for g in groups if g["TargetGroupName"] == "users")
        assert {"Key": "slow_start.duration_seconds", "Value": "0"} in (await call(
            handler, "elbv2", "DescribeTargetGroupAttributes", TargetGroupArn=users["TargetGroupArn"]))["Attributes"]
        with pytest.raises(AwsError) as error:
            await call(handler, "elbv2", "DescribeTargetHealth", TargetGroupArn="arn:nope")
        assert error.value.code == "TargetGroupNotFound"
        with pytest.raises(AwsError) as error:
            await call(handler, "elbv2", "CreateLoadBalancer", Name="x")
        assert error.value.code == "InvalidAction"
    asyncio.run(scenario())
