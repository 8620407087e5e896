"""The target health state machine and the health check matcher, without time or sockets."""

from __future__ import annotations

import pytest

from devenv.compute.alb.health import (
    HealthRecord,
    Matcher,
    ProbeResult,
    Reason,
    TargetState,
    drain_finished,
)
from devenv.config.model import GRPC_CODES, TargetGroupHealthCheckConfig

SETTINGS = TargetGroupHealthCheckConfig(healthy_threshold=3, unhealthy_threshold=2)
OK = Matcher.parse("200")


def run(record: HealthRecord, *results: ProbeResult | int) -> list[TargetState]:
    out = []
    for result in results:
        if isinstance(result, int):
            result = ProbeResult.answered(result)
        out.append(record.observe(result, OK, SETTINGS))
    return out


# ---------------------------------------------------------------- matcher


@pytest.mark.parametrize("text, inside, outside", [
    ("200", [200], [199, 201, 204]),
    ("200,204", [200, 204], [201, 203]),
    ("200-299", [200, 250, 299], [300, 199]),
    ("200-204, 301", [200, 204, 301], [205, 300, 302]),
    ("499", [499], [200]),
])
def test_matcher_parsing(text, inside, outside):
    matcher = Matcher.parse(text)
    assert all(code in matcher for code in inside)
    assert not any(code in matcher for code in outside)


@pytest.mark.parametrize("text", ["", "abc", "200-", "-200", "299-200", "100", "500", "200-500", "200,,204"])
def test_bad_matchers_are_refused(text):
    with pytest.raises(ValueError):
        Matcher.parse(text)


def test_grpc_matchers_take_grpc_status_codes():
    matcher = Matcher.parse("0-2,12", GRPC_CODES)
    assert all(code in matcher for code in (0, 1, 2, 12))
    assert not any(code in matcher for code in (3, 11, 13))
    for bad in ("100", "200", "5-3", "x"):
        with pytest.raises(ValueError):
            Matcher.parse(bad, GRPC_CODES)


# ---------------------------------------------------------------- state machine


def test_a_new_target_is_initial_until_its_first_check():
    record = HealthRecord()
    assert record.state is TargetState.INITIAL
    assert record.reason is Reason.REGISTRATION_IN_PROGRESS
    record.checking()
    assert record.reason is Reason.INITIAL_HEALTH_CHECKING


def test_one_passing_check_makes_an_initial_target_healthy():
    # AWS: "After your target is registered, it must pass one health check to be considered healthy."
    record = HealthRecord()
    assert run(record, 200) == [TargetState.HEALTHY]
    assert record.reason is None


def test_an_initial_target_failing_unhealthy_threshold_checks_becomes_unhealthy():
    record = HealthRecord()
    assert run(record, 500) == [TargetState.INITIAL]
    assert record.reason is Reason.INITIAL_HEALTH_CHECKING
    assert run(record, 500) == [TargetState.UNHEALTHY]
    assert record.reason is Reason.RESPONSE_CODE_MISMATCH
    assert record.description == "Health checks failed with these codes: [500]"


def test_healthy_to_unhealthy_after_unhealthy_threshold_consecutive_failures():
    record = HealthRecord()
    run(record, 200)
    # A success in between resets the count.
    assert run(record, 500, 200, 500) == [TargetState.HEALTHY] * 3
    assert run(record, ProbeResult.timed_out()) == [TargetState.UNHEALTHY]
    assert record.reason is Reason.TIMEOUT
    assert record.failures == 2 and record.successes == 0


def test_unhealthy_to_healthy_after_healthy_threshold_consecutive_successes():
    record = HealthRecord()
    run(record, 500, 500)
    assert run(record, 200, 200) == [TargetState.UNHEALTHY] * 2
    assert run(record, 500) == [TargetState.UNHEALTHY]  # breaks the run
    assert run(record, 200, 200, 200) == [TargetState.UNHEALTHY, TargetState.UNHEALTHY, TargetState.HEALTHY]
    assert record.successes == 3 and record.failures == 0


def test_failure_reasons_follow_the_last_failed_check():
    record = HealthRecord()
    run(record, 200, ProbeResult.failed("connection refused"), ProbeResult.failed("connection refused"))
    assert record.state is TargetState.UNHEALTHY
    assert record.reason is Reason.FAILED_HEALTH_CHECKS
    run(record, ProbeResult.timed_out())
    assert record.reason is Reason.TIMEOUT
    assert record.last_failure.startswith("Target.Timeout")


def test_a_healthy_target_keeps_its_last_failure_for_diagnosis():
    record = HealthRecord()
    run(record, 200, 503)
    assert record.state is TargetState.HEALTHY and record.reason is None
    assert "503" in record.last_failure


def test_a_status_outside_a_range_matcher_is_a_mismatch():
    record = HealthRecord()
    wide = Matcher.parse("200-399")
    assert record.observe(ProbeResult.answered(302), wide, SETTINGS) is TargetState.HEALTHY
    record.observe(ProbeResult.answered(404), wide, SETTINGS)
    assert record.observe(ProbeResult.answered(404), wide, SETTINGS) is TargetState.UNHEALTHY


# ---------------------------------------------------------------- draining


@pytest.mark.parametrize("in_flight, elapsed, delay, finished", [
    (0, 0.0, 300, True),  # nothing in flight: done at once
    (2, 10.0, 300, False),
    (2, 300.0, 300, True),  # the delay elapsed
    (1, 0.0, 0, True),  # a zero delay cuts at once
])
def test_drain_finished(in_flight, elapsed, delay, finished):
    assert drain_finished(in_flight, elapsed, delay) is finished
