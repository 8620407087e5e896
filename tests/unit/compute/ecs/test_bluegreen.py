"""The CodeDeploy blue/green state machine and its traffic schedules, pure: events in, effects out."""

from __future__ import annotations

import itertools

import pytest

from devenv.compute.ecs.bluegreen import (Begin, BlueGreenDeployment, CreateGreen, Finished, GreenReady,
                                          GreenUnhealthy, HookReported, InvokeHook, LifecycleEvent, Plan, Promote,
                                          RemoveBlue, RemoveGreen, RouteTest, SetWeights, Shift, Status, StepStatus,
                                          Tick, traffic_schedule)
from devenv.config.model import BlueGreenConfig, TrafficRoutingConfig


def test_all_at_once_shifts_everything_at_the_start():
    assert traffic_schedule("AllAtOnce", 100, 0) == (Shift(0.0, 100),)


def test_canary_shifts_its_percentage_then_the_rest_after_one_interval():
    assert traffic_schedule("TimeBasedCanary", 10, 5) == (Shift(0.0, 10), Shift(300.0, 100))


def test_linear_shifts_equal_steps_every_interval_until_all_traffic_moved():
    schedule = traffic_schedule("TimeBasedLinear", 10, 1)
    assert [s.percent for s in schedule] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert [s.at for s in schedule] == [60.0 * i for i in range(10)]
    assert [s.percent for s in traffic_schedule("TimeBasedLinear", 30, 2)] == [30, 60, 90, 100]


def test_time_scale_compresses_the_intervals():
    assert traffic_schedule("TimeBasedCanary", 10, 15, time_scale=0.01) == (Shift(0.0, 10), Shift(9.0, 100))


@pytest.mark.parametrize("name, routing", [
    ("CodeDeployDefault.ECSAllAtOnce", ("AllAtOnce", 100, 0)),
    ("CodeDeployDefault.ECSLinear10PercentEvery1Minutes", ("TimeBasedLinear", 10, 1)),
    ("CodeDeployDefault.ECSLinear10PercentEvery3Minutes", ("TimeBasedLinear", 10, 3)),
    ("CodeDeployDefault.ECSCanary10Percent5Minutes", ("TimeBasedCanary", 10, 5)),
    ("CodeDeployDefault.ECSCanary10Percent15Minutes", ("TimeBasedCanary", 10, 15)),
])
def test_codedeploy_s_predefined_configurations(name, routing):
    config = BlueGreenConfig(deployment_config=name)
    assert config.routing() == routing and config.config_name == name


def test_a_custom_configuration_is_named_as_codedeploy_names_its_own():
    canary = BlueGreenConfig(traffic_routing=TrafficRoutingConfig(type="TimeBasedCanary", percentage=25, interval=2))
    linear = BlueGreenConfig(traffic_routing=TrafficRoutingConfig(type="TimeBasedLinear", percentage=20, interval=3))
    assert canary.routing() == ("TimeBasedCanary", 25, 2)
    assert canary.config_name == "Custom.ECSCanary25Percent2Minutes"
    assert linear.config_name == "Custom.ECSLinear20PercentEvery3Minutes"


HOOKS = (("BeforeInstall", "pre"), ("AfterAllowTestTraffic", "smoke"), ("BeforeAllowTraffic", "gate"),
         ("AfterAllowTraffic", "post"))


def machine(shifts=(Shift(0.0, 10), Shift(60.0, 100)), hooks=HOOKS, **plan) -> BlueGreenDeployment:
    ids = (f"exec-{n}" for n in itertools.count(1))
    return BlueGreenDeployment(Plan(shifts=tuple(shifts), hooks=hooks, hook_timeout=30.0, test_listener=True,
                                    **plan), new_id=lambda: next(ids))


def hook_of(effects) -> InvokeHook:
    [hook] = [e for e in effects if isinstance(e, InvokeHook)]
    return hook


def passing_until_traffic(m: BlueGreenDeployment) -> list:
    """Begin, every hook before AllowTraffic passing, the replacement ready: the effects in order."""
    seen = m.step(Begin(0.0))
    seen += m.step(HookReported(1.0, hook_of(seen).execution_id, True))  # BeforeInstall
    seen += m.step(GreenReady(2.0))
    seen += m.step(HookReported(3.0, hook_of(seen[-3:]).execution_id, True))  # AfterAllowTestTraffic
    seen += m.step(HookReported(4.0, hook_of(seen[-1:]).execution_id, True))  # BeforeAllowTraffic
    return seen


def test_a_canary_runs_codedeploy_s_lifecycle_in_order_and_succeeds():
    m = machine()
    effects = m.step(Begin(0.0))
    assert effects == [InvokeHook("BeforeInstall", "pre", "exec-1")]
    assert m.status is Status.IN_PROGRESS and m.current is LifecycleEvent.BEFORE_INSTALL
    effects = m.step(HookReported(1.0, "exec-1", True))
    assert effects == [CreateGreen()]  # AfterInstall has no hook: skipped once the task set is ready
    assert m.step(Tick(1.5)) == []  # the replacement is not ready yet
    effects = m.step(GreenReady(2.0))
    assert effects == [RouteTest(True), InvokeHook("AfterAllowTestTraffic", "smoke", "exec-2")]
    assert m.steps[LifecycleEvent.AFTER_INSTALL].status is StepStatus.SKIPPED
    assert m.step(HookReported(3.0, "exec-2", True)) == [InvokeHook("BeforeAllowTraffic", "gate", "exec-3")]
    assert m.step(HookReported(4.0, "exec-3", True)) == [SetWeights(10)]  # the canary
    assert m.step(Tick(30.0)) == []
    assert m.step(Tick(64.0)) == [SetWeights(100), InvokeHook("AfterAllowTraffic", "post", "exec-4")]
    # both listeners stay on the replacement, now the primary task set
    assert m.step(HookReported(65.0, "exec-4", True)) == [Promote(), RemoveBlue(), Finished(Status.SUCCEEDED)]
    assert m.status is Status.SUCCEEDED and m.completed == 65.0
    assert [m.steps[e].status for e in LifecycleEvent] == [StepStatus.SUCCEEDED] * 2 + [StepStatus.SKIPPED] + \
        [StepStatus.SUCCEEDED] * 5


def test_blue_is_terminated_only_after_the_termination_wait():
    m = machine(hooks=(), termination_wait=10.0)
    effects = m.step(Begin(0.0)) + m.step(GreenReady(1.0))
    assert SetWeights(10) in effects and Promote() not in effects
    effects = m.step(Tick(61.0))
    assert effects[:2] == [SetWeights(100), Promote()] and RemoveBlue() not in effects
    assert m.step(Tick(70.0)) == [] and m.status is Status.IN_PROGRESS
    assert m.step(Tick(71.0)) == [RemoveBlue(), Finished(Status.SUCCEEDED)]


def test_a_failing_before_allow_traffic_hook_rolls_back_before_any_production_traffic_moved():
    m = machine()
    seen = m.step(Begin(0.0))
    seen += m.step(HookReported(1.0, "exec-1", True))
    seen += m.step(GreenReady(2.0))
    seen += m.step(HookReported(3.0, "exec-2", True))
    effects = m.step(HookReported(4.0, "exec-3", False, "smoke test got 500"))
    assert not any(isinstance(e, SetWeights) and e.green for e in seen + effects)  # blue kept it all
    assert effects == [SetWeights(0), RouteTest(False), RemoveGreen(),
                       Finished(Status.FAILED, "BeforeAllowTraffic hook gate failed: smoke test got 500",
                                rolled_back=True)]
    assert m.status is Status.FAILED and m.rolled_back
    assert m.steps[LifecycleEvent.BEFORE_ALLOW_TRAFFIC].status is StepStatus.FAILED
    assert m.step(HookReported(5.0, "exec-3", True)) == []  # too late: nothing changes


def test_a_failure_during_the_canary_puts_all_traffic_back_on_blue():
    m = machine()
    passing_until_traffic(m)
    assert m.green_percent == 10
    effects = m.step(GreenUnhealthy(20.0, "task x failed its health checks"))
    assert effects[0] == SetWeights(0) and RemoveGreen() in effects
    assert m.green_percent == 0 and m.status is Status.FAILED
    assert m.message == "the replacement task set is unhealthy: task x failed its health checks"


def test_a_hook_that_never_reports_fails_at_its_timeout():
    m = machine()
    m.step(Begin(0.0))
    m.step(HookReported(1.0, "exec-1", True))
    m.step(GreenReady(2.0))
    assert m.step(Tick(31.9)) == []
    effects = m.step(Tick(32.0))
    assert isinstance(effects[-1], Finished) and effects[-1].status is Status.FAILED
    assert "AfterAllowTestTraffic hook smoke did not report its status in time" in m.message


def test_a_failed_before_install_fails_without_a_rollback():
    m = machine()
    m.step(Begin(0.0))
    assert m.step(HookReported(1.0, "exec-1", False, "not today")) == [
        Finished(Status.FAILED, "BeforeInstall hook pre failed: not today")]
    assert not m.rolled_back


def test_without_rollback_on_failure_the_replacement_is_left_running_but_gets_no_traffic():
    m = machine(rollback_on_failure=False)
    passing_until_traffic(m)
    effects = m.step(GreenUnhealthy(20.0, "crashed"))
    assert SetWeights(0) in effects and RemoveGreen() not in effects and not m.rolled_back


def test_unhealthy_green_without_rollback_on_unhealthy_is_only_replaced():
    m = machine(rollback_on_unhealthy=False)
    passing_until_traffic(m)
    assert m.step(GreenUnhealthy(20.0, "crashed")) == [] and m.status is Status.IN_PROGRESS


def test_a_replacement_that_never_gets_ready_fails_the_deployment():
    m = machine(hooks=())
    m.step(Begin(0.0))
    assert m.current is LifecycleEvent.INSTALL
    effects = m.step(Tick(30.0))
    assert m.status is Status.FAILED and RemoveGreen() in effects
    assert m.message == "the replacement task set did not become healthy in time"


def test_a_report_for_another_execution_changes_nothing():
    m = machine()
    m.step(Begin(0.0))
    assert m.step(HookReported(1.0, "someone-else", True)) == []
    assert m.current is LifecycleEvent.BEFORE_INSTALL
