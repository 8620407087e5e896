"""Slow start in front of real ECS tasks: a task added by a scale-out gets few requests at
first, and its share grows over the target group's slow_start duration."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from devenv.health import wait_until
from tests.integration.ecs import stack_with_alb
from tests.integration.ecs.test_alb import STACK as ALB_STACK

pytestmark = pytest.mark.integration

SLOW_START = 30  # seconds: ELBv2's least duration

# test_alb's stack with one task to start from and slow start on its target group
STACK = (ALB_STACK.replace("name: albit", "name: albslow").replace("albit.local", "albslow.local")
         .replace("desired_count: 2", "desired_count: 1")
         .replace("      deregistration_delay: 15", f"      slow_start: {SLOW_START}\n      deregistration_delay: 15"))


@pytest.fixture(scope="module")
def stack():
    assert f"slow_start: {SLOW_START}" in STACK and "desired_count: 1" in STACK  # test_alb's stack still fits
    yield from stack_with_alb(STACK, "front")


def healthy_tasks(stack) -> list[str]:
    """The task ids of the service when every running task is healthy, else []."""
    view = next(s for s in stack.ecs.services() if s["serviceName"] == "front")
    tasks = [t["taskId"] for t in stack.ecs.tasks(stopped=False) if t["lastStatus"] == "RUNNING"]
    return tasks if view["healthyCount"] == len(tasks) else []


def share_of(stack, task: str, requests: int = 40) -> float:
    seen = []
    for _ in range(requests):
        with urllib.request.urlopen(stack.alb + "/front/whoami", timeout=10) as response:
            seen.append(json.loads(response.read())["task"])
    return seen.count(task) / requests


def test_a_task_added_by_a_scale_out_gets_a_growing_share(stack):
    assert wait_until(lambda: len(healthy_tasks(stack)) == 1, timeout=60)
    [first] = healthy_tasks(stack)
    assert share_of(stack, first, 10) == 1.0
    stack.devenv("scale", "front", "2")
    assert wait_until(lambda: len(healthy_tasks(stack)) == 2, timeout=60, interval=0.1)
    seen_at = time.monotonic()
    [new] = [task for task in healthy_tasks(stack) if task != first]
    early = share_of(stack, new)
    early_by = time.monotonic() - seen_at + 2  # it may have turned healthy a little before we saw it
    # its weight is elapsed/30 beside the first task's 1: a full share would be half the requests
    assert early <= early_by / SLOW_START + 0.05, (early, early_by)
    shares = [early]
    while shares[-1] < 0.3 and time.monotonic() < seen_at + SLOW_START:
        shares.append(share_of(stack, new))
    assert shares[-1] >= 0.3 > early, shares
