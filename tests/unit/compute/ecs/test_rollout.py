"""Rolling deployment decisions and target tracking, as pure functions."""

import pytest

from devenv.compute.ecs.autoscaling import DesiredCount, ScalingState, decide, within_bounds
from devenv.compute.ecs.rollout import LastStatus, TaskView, failure_threshold, limits, plan_rollout
from devenv.config.model import AutoscalingConfig

R = LastStatus.RUNNING


def t(id, rev, healthy=True, status=R, started=0.0):
    return TaskView(id, rev, status, healthy, started)


def test_limits_round_like_ecs():
    assert limits(2, 50, 200) == (1, 4)
    assert limits(3, 50, 200) == (2, 6)
    assert limits(1, 100, 200) == (1, 2)
    assert limits(5, 100, 150) == (5, 7)


def test_steady_state_starts_missing_tasks_only():
    plan = plan_rollout(desired=3, primary=1, tasks=[t("a", 1)], minimum_healthy_percent=100, maximum_percent=200)
    assert plan.start == 2 and plan.stop == () and not plan.completed
    done = plan_rollout(desired=1, primary=1, tasks=[t("a", 1)], minimum_healthy_percent=100, maximum_percent=200)
    assert done.start == 0 and done.completed


def test_rollout_with_100_200_starts_new_before_stopping_old():
    old = [t("a", 1), t("b", 1)]
    first = plan_rollout(desired=2, primary=2, tasks=old, minimum_healthy_percent=100, maximum_percent=200)
    assert first.start == 2 and first.stop == ()
    booting = old + [t("c", 2, healthy=False), t("d", 2, healthy=False)]
    wait = plan_rollout(desired=2, primary=2, tasks=booting, minimum_healthy_percent=100, maximum_percent=200)
    assert wait.start == 0 and wait.stop == ()  # never below 100% healthy
    ready = old + [t("c", 2), t("d", 2)]
    swap = plan_rollout(desired=2, primary=2, tasks=ready, minimum_healthy_percent=100, maximum_percent=200)
    assert set(swap.stop) == {"a", "b"} and swap.start == 0


def test_rollout_with_50_percent_may_stop_one_old_task_at_once():
    plan = plan_rollout(desired=2, primary=2, tasks=[t("a", 1), t("b", 1)], minimum_healthy_percent=50,
                        maximum_percent=200)
    assert len(plan.stop) == 1 and plan.start == 2


def test_maximum_percent_caps_the_surge():
    plan = plan_rollout(desired=4, primary=2, tasks=[t(str(i), 1) for i in range(4)], minimum_healthy_percent=100,
                        maximum_percent=150)
    assert plan.start == 2 and plan.stop == ()


def test_unhealthy_old_tasks_always_go_and_scale_in_drops_newest():
    plan = plan_rollout(desired=1, primary=2, tasks=[t("sick", 1, healthy=False), t("n", 2)],
                        minimum_healthy_percent=100, maximum_percent=200)
    assert plan.stop == ("sick",)
    scale_in = plan_rollout(desired=1, primary=1, tasks=[t("old", 1, started=1), t("new", 1, started=5)],
                            minimum_healthy_percent=100, maximum_percent=200)
    assert scale_in.stop == ("new",)


def test_stopping_tasks_do_not_count():
    plan = plan_rollout(desired=2, primary=1, tasks=[t("a", 1), t("b", 1, status=LastStatus.STOPPING)],
                        minimum_healthy_percent=100, maximum_percent=200)
    assert plan.start == 1


@pytest.mark.parametrize("desired,threshold", [(1, 3), (2, 3), (10, 5), (1000, 200)])
def test_circuit_breaker_threshold(desired, threshold):
    assert failure_threshold(desired) == threshold


CONFIG = AutoscalingConfig(min=2, max=10, target_cpu=70, scale_in_cooldown=300, scale_out_cooldown=60)


def test_target_tracking_scales_out_proportionally_and_respects_cooldown():
    state = ScalingState()
    out = decide(CONFIG, current=2, average_cpu=140, now=1000, state=state)
    assert out.desired == 4 and "140%" in out.reason
    state.last_scale_out = 1000
    assert decide(CONFIG, current=4, average_cpu=140, now=1030, state=state).desired == 4  # cooling down
    assert decide(CONFIG, current=4, average_cpu=140, now=1061, state=state).desired == 8


def test_target_tracking_scales_in_after_its_cooldown_and_not_near_the_target():
    state = ScalingState(last_scale_out=1000)
    assert decide(CONFIG, current=6, average_cpu=5, now=1200, state=state).desired == 6  # within 300 s
    assert decide(CONFIG, current=6, average_cpu=5, now=1301, state=state).desired == 2  # to min
    assert decide(CONFIG, current=6, average_cpu=66, now=2000, state=state).desired == 6  # within 90% of target


def test_target_tracking_clamps_to_bounds():
    assert decide(CONFIG, current=1, average_cpu=None, now=0, state=ScalingState()).desired == 2
    assert decide(CONFIG, current=10, average_cpu=500, now=0, state=ScalingState()).desired == 10


def test_a_requested_count_is_held_within_autoscaling_bounds_and_says_which():
    config = AutoscalingConfig(min=1, max=5)
    assert within_bounds(config, 9) == DesiredCount(9, 5, "max")
    assert within_bounds(config, 0) == DesiredCount(0, 1, "min")
    assert within_bounds(config, 3) == DesiredCount(3, 3)
    assert within_bounds(config, 5) == DesiredCount(5, 5) and within_bounds(config, 1) == DesiredCount(1, 1)
    assert within_bounds(None, 9) == DesiredCount(9, 9)  # no autoscaling: any count
