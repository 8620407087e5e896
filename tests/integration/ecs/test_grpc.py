"""A gRPC service on ECS behind the internal ALB: a GRPC target group of two tasks of the
fixture gRPC server (``tests/fixtures/services/grpc``, grpcio, its own environment), health
checked with gRPC codes, called through the ALB by grpcio's client: unary, server streaming,
and a failing status passed through intact; ELBv2 shows the target group's protocol version."""

from __future__ import annotations

import grpc
import pytest

from devenv.health import wait_until
from tests.integration.ecs import stack_with_alb
from tests.integration.ecs.test_alb import elbv2

pytestmark = pytest.mark.integration

STACK = """\
name: grpcit
infra:
  postgres: false
  redis: false
load_balancer:
  hostname: internal-alb.grpcit.local
  idle_timeout: 10
services:
  echo:
    build: services/echo
    command: [python, app.py]
    requirements: requirements.txt
    desired_count: 2
    load_balancer:
      paths: ["/devenv.test.Echo/*"]
      priority: 10
      protocol_version: GRPC
      deregistration_delay: 1
      health_check: {interval: 0.5, timeout: 1, healthy_threshold: 2, unhealthy_threshold: 2}
"""
ECHO = "/devenv.test.Echo/"


@pytest.fixture(scope="module")
def stack():
    yield from stack_with_alb(STACK, "echo", fixture="grpc")


def serving(stack) -> list[dict]:
    view = next(s for s in stack.ecs.services() if s["serviceName"] == "echo")
    tasks = [t for t in stack.ecs.tasks(stopped=False) if t["lastStatus"] == "RUNNING"]
    return tasks if view["healthyCount"] == 2 and len(tasks) == 2 else []


def channel(stack) -> grpc.Channel:
    return grpc.insecure_channel(stack.alb.removeprefix("http://"))


def test_unary_and_server_streaming_calls_through_the_alb(stack):
    assert wait_until(lambda: serving(stack), timeout=60)  # healthy: /AWS.ALB/healthcheck answered 12
    tasks = {t["taskId"] for t in serving(stack)}
    with channel(stack) as ch:
        say = ch.unary_unary(ECHO + "Say")
        seen = {say(b"hi", timeout=10).split(b": ")[0].decode() for _ in range(6)}
        assert seen == tasks  # round robin over both tasks
        streamed = list(ch.unary_stream(ECHO + "Count")(b"4", timeout=10))
        assert [m.split(b": ")[1] for m in streamed] == [b"0", b"1", b"2", b"3"]
        assert len({m.split(b": ")[0] for m in streamed}) == 1  # one call, one task


def test_a_failing_status_reaches_the_client_intact(stack):
    assert wait_until(lambda: serving(stack), timeout=60)
    with channel(stack) as ch:
        with pytest.raises(grpc.RpcError) as failure:
            ch.unary_unary(ECHO + "Missing")(b"order 7", timeout=10)
    error = failure.value
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == "no order 7 here"
    assert ("x-detail", "looked everywhere") in tuple(error.trailing_metadata())
    with channel(stack) as ch:
        stream = ch.unary_stream(ECHO + "Drip")(b"2", timeout=10)
        assert [m.split(b": ")[1] for m in (next(stream), next(stream))] == [b"0", b"1"]
        with pytest.raises(grpc.RpcError) as after_data:
            next(stream)
    assert after_data.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert after_data.value.details() == "dry after 2"


def test_elbv2_shows_a_grpc_target_group_and_its_grpc_codes(stack):
    assert wait_until(lambda: serving(stack), timeout=60)
    [group] = elbv2(stack).describe_target_groups()["TargetGroups"]
    assert group["ProtocolVersion"] == "GRPC"
    assert group["Matcher"] == {"GrpcCode": "12"} and group["HealthCheckPath"] == "/AWS.ALB/healthcheck"
