"""The pool's state machine, without processes, sockets or time: events in, effects out."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest

from devenv.compute.lambda_.functions import LOCAL_UNRESERVED_CONCURRENCY, FunctionSpec
from devenv.compute.lambda_.invoke import Throttled
from devenv.compute.lambda_.pool import (
    IDLE_TTL,
    INIT_TIMEOUT,
    LOG_TAIL,
    RESPONSE_LIMIT,
    Collect,
    Deliver,
    Finish,
    Instance,
    InstanceState,
    Invocation,
    Kill,
    Log,
    Pool,
    Report,
    Start,
    error_payload,
    normalise_error,
)

SPEC = FunctionSpec(name="fn", handler="app.handler", code_dir=Path("/code"), runtime="python3.12",
                    memory_mb=128, timeout=3.0, environment={}, reserved_concurrency=None,
                    maximum_retry_attempts=2, on_failure_queue=None, dead_letter_queue=None,
                    region="us-east-1")


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def wall() -> Clock:
    return Clock(1_700_000_000.25)  # 2023-11-14T22:13:20.250Z


def make_pool(clock: Clock, wall: Clock, spec: FunctionSpec = SPEC) -> Pool:
    ids = (f"i{n}" for n in itertools.count(1))
    return Pool(spec, clock=clock, wall=wall, new_id=lambda: next(ids))


@pytest.fixture
def pool(clock: Clock, wall: Clock) -> Pool:
    return make_pool(clock, wall)


def invocation(request_id: str = "req-1") -> Invocation:
    return Invocation(request_id, b"{}", "Root=1-abc", None)


def kinds(effects) -> list[type]:
    return [type(e) for e in effects]


def payload_of(effects) -> dict:
    (finish,) = [e for e in effects if isinstance(e, Finish)]
    return json.loads(finish.payload)


def started(pool: Pool, clock: Clock, inv: Invocation | None = None) -> Instance:
    """A cold start up to the instance's first /next, its invocation handed over."""
    inv = inv or invocation()
    (start,) = pool.invoke(inv)
    pool.launching(start.instance)
    clock.now += 0.25
    pool.next(start.instance)
    return start.instance


def warm(pool: Pool, clock: Clock, request_id: str = "req-1") -> Instance:
    """An instance that has answered one invocation and is parked in /next."""
    (instance,) = parked(pool, clock, request_id)
    return instance


def parked(pool: Pool, clock: Clock, *request_ids: str, gap: float = 0.0) -> list[Instance]:
    """Instances started side by side, one per request id, then answered and parked in /next
    in that order, ``gap`` seconds apart."""
    instances = [started(pool, clock, invocation(request_id)) for request_id in request_ids]
    for instance, request_id in zip(instances, request_ids):
        pool.response(instance, request_id, b"ok")
        pool.next(instance)
        clock.now += gap
    return instances


# ---------------------------------------------------------------- cold start


def test_the_first_invocation_starts_an_instance(pool: Pool):
    inv = invocation()
    effects = pool.invoke(inv)
    assert kinds(effects) == [Start]
    instance = effects[0].instance
    assert instance.id == "i1" and instance.state is InstanceState.STARTING
    assert instance.current is inv and inv.cold
    assert pool.instances == {"i1": instance}
    assert (pool.cold_starts, pool.warm_starts, pool.active) == (1, 0, 1)


def test_the_instance_type_is_the_runtimes(clock: Clock, wall: Clock):
    class Edge(Instance):
        pass

    (start,) = Pool(SPEC, clock=clock, wall=wall, instance_type=Edge).invoke(invocation())
    assert type(start.instance) is Edge and len(start.instance.id) == 12


def test_the_first_next_hands_over_the_invocation_that_started_it(pool: Pool, clock: Clock, wall: Clock):
    inv = invocation()
    (start,) = pool.invoke(inv)
    instance = start.instance
    pool.launching(instance)
    assert instance.spawned_at == 1000.0
    clock.now += 0.25
    effects = pool.next(instance)
    assert effects == [Log("START RequestId: req-1 Version: $LATEST", inv, instance), Deliver(instance, inv)]
    assert instance.state is InstanceState.BUSY
    assert instance.init_duration_ms == 250.0
    assert inv.delivered_at == 1000.25
    assert inv.started_wall == wall.now
    assert inv.deadline_ms == 1_700_000_000_250 + 3000


def test_an_answer_reports_and_finishes(pool: Pool, clock: Clock):
    inv = invocation()
    instance = started(pool, clock, inv)
    clock.now += 0.0123
    status, effects = pool.response(instance, "req-1", b'"hi"')
    assert status == 202
    assert effects == [Collect(instance, inv), Report(instance, inv, pytest.approx(12.3), 250.0, None),
                       Finish(inv, b'"hi"', None)]
    assert instance.state is InstanceState.RETURNING and inv.finished
    assert pool.active == 1  # returning instances still count against the limit


def test_report_lines_are_lambdas():
    instance = Instance("i1", SPEC, 0)
    report = Report(instance, invocation(), 12.3, 250.0)
    assert report.lines(42) == (
        "END RequestId: req-1",
        "REPORT RequestId: req-1\tDuration: 12.30 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 42 MB\tInit Duration: 250.00 ms")
    assert Report(instance, invocation(), 0.0, None).lines(0)[1] == (
        "REPORT RequestId: req-1\tDuration: 0.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 0 MB")


@pytest.mark.parametrize("request_id", ["req-other", None])
def test_an_answer_for_another_invocation_is_refused(pool: Pool, clock: Clock, request_id):
    instance = started(pool, clock)
    if request_id is None:  # nothing handed over
        instance.current = None
    assert pool.response(instance, request_id or "req-1", b"ok") == (400, [])
    assert pool.error(instance, request_id or "req-1", b"{}", None) == (400, [])


def test_a_response_over_6_mb_is_a_function_error(pool: Pool, clock: Clock):
    instance = started(pool, clock)
    status, effects = pool.response(instance, "req-1", b"x" * (RESPONSE_LIMIT + 1))
    assert status == 202
    assert effects[-1].function_error == "Unhandled"
    assert payload_of(effects)["errorType"] == "Function.ResponseSizeTooLarge"
    assert f"({RESPONSE_LIMIT + 1} bytes)" in payload_of(effects)["errorMessage"]


def test_a_handler_error_is_normalised(pool: Pool, clock: Clock):
    inv = invocation()
    instance = started(pool, clock, inv)
    status, effects = pool.error(instance, "req-1", b'{"errorMessage": "boom", "errorType": "ValueError"}', None)
    assert status == 202 and kinds(effects) == [Collect, Report, Finish]
    assert payload_of(effects) == {"errorMessage": "boom", "errorType": "ValueError", "requestId": "req-1",
                                   "stackTrace": []}
    assert effects[-1].function_error == "Unhandled"


@pytest.mark.parametrize("body, error_type, expected", [
    (b"not json", "Custom", {"errorMessage": "not json", "errorType": "Custom"}),
    (b"[1]", None, {"errorMessage": "[1]", "errorType": "Runtime.Unknown"}),
    (b"{}", "Header.Type", {"errorMessage": "", "errorType": "Header.Type"}),
    (b'{"requestId": "own", "stackTrace": ["x"]}', None,
     {"errorMessage": "", "errorType": "Runtime.Unknown", "requestId": "own", "stackTrace": ["x"]}),
])
def test_error_bodies_become_the_invoke_apis_shape(body, error_type, expected):
    data = json.loads(normalise_error(body, "req-1", error_type))
    assert data == {"requestId": "req-1", "stackTrace": [], **expected}


# ---------------------------------------------------------------- warm reuse and concurrency


def test_an_answered_instance_parks_in_next(pool: Pool, clock: Clock):
    instance = started(pool, clock)
    pool.response(instance, "req-1", b"ok")
    clock.now += 1
    assert pool.next(instance) == []
    assert instance.state is InstanceState.IDLE and instance.current is None
    assert instance.idle_since == clock.now
    assert list(pool.idle) == [instance] and pool.active == 0


def test_a_parked_instance_gets_the_next_invocation_warm(pool: Pool, clock: Clock):
    instance = warm(pool, clock)
    inv = invocation("req-2")
    clock.now += 0.002
    effects = pool.invoke(inv)
    assert effects[1] == Deliver(instance, inv) and not inv.cold
    assert (pool.cold_starts, pool.warm_starts) == (1, 1)
    _, effects = pool.response(instance, "req-2", b"ok")
    assert effects[1].init_duration_ms is None  # reported on the cold invocation only


def test_the_most_recently_used_instance_is_taken_first(pool: Pool, clock: Clock):
    first, second = parked(pool, clock, "a", "b")
    assert pool.invoke(invocation("c"))[1].instance is second
    assert pool.invoke(invocation("d"))[1].instance is first


def test_the_instance_on_its_way_back_is_waited_for(pool: Pool, clock: Clock):
    instance = started(pool, clock)
    pool.response(instance, "req-1", b"ok")  # answered, not yet back in /next
    inv = invocation("req-2")
    assert pool.invoke(inv) == []
    assert instance.reserved is inv and pool.warm_starts == 1 and len(pool.instances) == 1
    assert pool.next(instance)[1] == Deliver(instance, inv)
    assert instance.reserved is None and instance.current is inv
    # A third one while req-2 runs and nothing is returning: a new instance.
    assert kinds(pool.invoke(invocation("req-3"))) == [Start]


def test_a_returning_instance_is_reserved_once(pool: Pool, clock: Clock):
    started(pool, clock)
    instance = pool.instances["i1"]
    pool.response(instance, "req-1", b"ok")
    pool.invoke(invocation("req-2"))
    assert kinds(pool.invoke(invocation("req-3"))) == [Start]


@pytest.mark.parametrize("reserved, limit, error", [
    (2, 2, "ReservedFunctionConcurrentInvocationLimitExceeded"),
    (None, LOCAL_UNRESERVED_CONCURRENCY, "ConcurrentInvocationLimitExceeded"),
])
def test_beyond_the_concurrency_limit_an_invocation_is_throttled(clock: Clock, wall: Clock, reserved, limit, error):
    pool = make_pool(clock, wall, replace(SPEC, reserved_concurrency=reserved))
    for n in range(limit):
        assert kinds(pool.invoke(invocation(f"r{n}"))) == [Start]
    with pytest.raises(Throttled) as raised:
        pool.invoke(invocation("over"))
    assert raised.value.reason == error
    assert pool.throttles == 1 and len(pool.instances) == limit


def test_reserving_concurrency_applies_to_the_next_invocations_and_zero_throttles_them_all(pool: Pool):
    (start,) = pool.invoke(invocation("r1"))
    pool.reserve(1)
    with pytest.raises(Throttled) as raised:
        pool.invoke(invocation("over"))
    assert raised.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert pool.spec.reserved_concurrency == 1 and start.instance in pool.instances.values()  # it runs on
    pool.reserve(0)
    pool.next(start.instance)  # the running one's invocation is handed over: it was accepted before
    pool.response(start.instance, "r1", b"ok")
    with pytest.raises(Throttled):
        pool.invoke(invocation("zero"))
    pool.reserve(None)
    assert kinds(pool.invoke(invocation("free"))) == []  # back to the unreserved pool: the warm one takes it
    assert pool.throttles == 2


def test_an_instance_that_could_not_start_fails_its_invocation(pool: Pool):
    inv = invocation()
    (start,) = pool.invoke(inv)
    effects = pool.start_failed(start.instance, "no such file")
    assert pool.instances == {}
    assert kinds(effects) == [Collect, Report, Finish]
    assert effects[1].duration_ms == 0.0  # never handed over
    assert payload_of(effects) == {"errorMessage": "could not start the function: no such file",
                                   "errorType": "Runtime.Unknown", "requestId": "req-1", "stackTrace": []}


# ---------------------------------------------------------------- init errors and exits


def test_an_init_error_fails_the_invocation_that_started_the_instance(pool: Pool, clock: Clock):
    inv = invocation()
    (start,) = pool.invoke(inv)
    instance = start.instance
    pool.launching(instance)
    clock.now += 0.5
    status, effects = pool.init_error(instance, b'{"errorMessage": "no module", "errorType": "Runtime.ImportModuleError"}',
                                      "Runtime.ImportModuleError")
    assert status == 202
    assert effects[:2] == [Collect(instance, inv), Log(
        "INIT_REPORT Init Duration: 500.00 ms\tPhase: init\tStatus: error\tError Type: Runtime.ImportModuleError",
        inv, instance)]
    assert kinds(effects[2:]) == [Collect, Finish]  # no END/REPORT: the invocation never ran
    assert payload_of(effects)["errorType"] == "Runtime.ImportModuleError"
    assert instance.current is None


def test_an_init_error_with_nothing_pending_is_logged(pool: Pool):
    instance = Instance("i9", SPEC, 0)
    status, effects = pool.init_error(instance, b"garbage", None)
    assert status == 202 and kinds(effects) == [Collect, Log]
    assert effects[1].invocation is None and effects[1].line.endswith("Error Type: Runtime.Unknown")


def test_an_exit_while_busy_fails_the_invocation(pool: Pool, clock: Clock):
    inv = invocation()
    instance = started(pool, clock, inv)
    effects = pool.exited(instance, 1)
    assert instance.state is InstanceState.DEAD and pool.instances == {}
    assert effects[0] == Collect(instance, inv)  # its last words belong to the invocation
    assert kinds(effects) == [Collect, Collect, Report, Finish]
    assert payload_of(effects)["errorMessage"] == "RequestId: req-1 Error: Runtime exited with error: exit status 1"
    assert payload_of(effects)["errorType"] == "Runtime.ExitError"


def test_an_exit_while_starting_is_an_init_error(pool: Pool, clock: Clock):
    inv = invocation()
    (start,) = pool.invoke(inv)
    effects = pool.exited(start.instance, -9)
    assert kinds(effects) == [Collect, Collect, Log, Collect, Finish]
    assert effects[2].line.endswith("Error Type: Runtime.ExitError") and effects[2].invocation is inv
    assert payload_of(effects)["errorMessage"] == "RequestId: req-1 Error: Runtime exited with error: signal: killed"


def test_an_exit_fails_the_invocation_reserved_for_the_instance(pool: Pool, clock: Clock):
    instance = started(pool, clock)
    pool.response(instance, "req-1", b"ok")
    reserved = invocation("req-2")
    pool.invoke(reserved)
    effects = pool.exited(instance, 0)
    assert kinds(effects) == [Collect, Collect, Finish]  # the answered one is left alone
    assert effects[-1].invocation is reserved
    assert payload_of(effects)["errorMessage"] == \
        "RequestId: req-2 Error: Runtime exited before the invocation started"
    assert instance.reserved is None


def test_an_exit_after_answering_changes_nothing_for_callers(pool: Pool, clock: Clock):
    instance = warm(pool, clock)
    assert pool.exited(instance, 0) == [Collect(instance, None)]
    # Its stale entry in the idle queue is skipped.
    assert kinds(pool.invoke(invocation("req-2"))) == [Start]


# ---------------------------------------------------------------- timeouts, memory, kills


def test_a_timeout_kills_the_instance_and_fails_the_invocation(pool: Pool, clock: Clock, wall: Clock):
    inv = invocation()
    instance = started(pool, clock, inv)
    clock.now += 3
    effects = pool.timed_out(instance, inv)
    assert effects[0] == Log("2023-11-14T22:13:20.250Z req-1 Task timed out after 3.00 seconds", inv, instance)
    assert kinds(effects) == [Log, Kill, Collect, Report, Finish]
    assert effects[3].duration_ms == 3000.0
    assert payload_of(effects) == {"errorMessage": "RequestId: req-1 Error: Task timed out after 3.00 seconds",
                                   "errorType": "Sandbox.Timedout", "requestId": "req-1", "stackTrace": []}
    assert instance.killed_for == "timeout" and instance.retire
    assert pool.timed_out(instance, inv) == []  # once


def test_a_late_answer_after_a_timeout_answers_nobody(pool: Pool, clock: Clock):
    inv = invocation()
    instance = started(pool, clock, inv)
    pool.timed_out(instance, inv)
    status, effects = pool.response(instance, "req-1", b"late")
    assert status == 202 and Finish not in kinds(effects)


def test_an_init_timeout_kills_a_starting_instance(pool: Pool):
    inv = invocation()
    (start,) = pool.invoke(inv)
    effects = pool.init_timed_out(start.instance)
    assert kinds(effects) == [Kill, Collect, Finish]
    assert payload_of(effects)["errorMessage"] == \
        f"RequestId: req-1 Error: init did not complete within {INIT_TIMEOUT:.0f} seconds"
    assert start.instance.killed_for == "init timeout"


def test_an_init_timeout_leaves_a_started_instance_alone(pool: Pool, clock: Clock):
    instance = started(pool, clock)
    assert pool.init_timed_out(instance) == []
    instance.state = InstanceState.STARTING  # still starting, its invocation already failed elsewhere
    instance.current.finished = True
    assert kinds(pool.init_timed_out(instance)) == [Kill]


def test_running_out_of_memory_kills_and_reports_all_of_it_used(pool: Pool, clock: Clock):
    inv = invocation()
    instance = started(pool, clock, inv)
    effects = pool.out_of_memory(instance)
    assert kinds(effects) == [Kill, Collect, Report, Finish]
    assert effects[2].max_memory_mb == 128
    assert payload_of(effects)["errorType"] == "Runtime.OutOfMemory"
    assert payload_of(effects)["errorMessage"] == "RequestId: req-1 Error: Runtime exited with error: signal: killed"
    assert pool.out_of_memory(instance) == [Kill(instance)]  # already answered
    assert instance.killed_for == "memory"


def test_the_first_reason_to_kill_is_kept(pool: Pool, clock: Clock):
    instance = started(pool, clock)
    pool.kill(instance, "timeout")
    assert pool.kill(instance, "memory") == [Kill(instance)]
    assert instance.killed_for == "timeout"


# ---------------------------------------------------------------- reload and idleness


def test_a_code_change_retires_every_instance(pool: Pool, clock: Clock):
    busy = started(pool, clock, invocation("req-2"))
    idle = warm(pool, clock)
    effects = pool.reload()
    assert effects == [Kill(idle)] and idle.retire and busy.retire
    assert pool.version == 1 and not pool.idle
    # The busy one finishes its invocation, then goes instead of parking.
    pool.response(busy, "req-2", b"ok")
    assert pool.next(busy) == [Kill(busy)]
    # New invocations get new instances, of the new version.
    (start,) = pool.invoke(invocation("req-3"))
    assert start.instance.version == 1


def test_an_instance_of_old_code_is_not_reused(pool: Pool, clock: Clock):
    returning = started(pool, clock)
    pool.response(returning, "req-1", b"ok")
    pool.version += 1  # as if it had been started before an edit without being told
    assert kinds(pool.invoke(invocation("req-2"))) == [Start]
    assert pool.next(returning) == [Kill(returning)]


def test_instances_idle_longer_than_the_ttl_are_reaped(pool: Pool, clock: Clock):
    old, young = parked(pool, clock, "a", "b", gap=IDLE_TTL / 2)
    assert pool.reap_idle(clock.now + 1) == [Kill(old)]
    assert list(pool.idle) == [young] and old.retire


def test_a_parked_instance_whose_pending_invocation_was_answered_stays_idle(pool: Pool):
    instance = Instance("i9", SPEC, 0, current=invocation())
    instance.current.finished = True
    assert pool.next(instance) == [] and instance.state is InstanceState.IDLE


# ---------------------------------------------------------------- invocations' own output


@pytest.mark.parametrize("state, owns", [
    (InstanceState.STARTING, True), (InstanceState.BUSY, True), (InstanceState.RETURNING, False),
    (InstanceState.IDLE, False), (InstanceState.DEAD, False),
])
def test_output_belongs_to_the_running_invocation(state, owns):
    inv = invocation()
    instance = Instance("i1", SPEC, 0, state=state, current=inv)
    assert instance.output_invocation() is (inv if owns else None)
    assert Instance("i2", SPEC, 0, state=state).output_invocation() is None


def test_an_invocation_keeps_the_tail_of_its_log():
    inv = invocation()
    inv.keep_log(b"a" * LOG_TAIL)
    inv.keep_log(b"b" * LOG_TAIL)
    assert len(inv.log) == 2 * LOG_TAIL
    inv.keep_log(b"c")
    assert bytes(inv.log) == b"b" * (LOG_TAIL - 1) + b"c"


def test_error_payloads_are_lambdas_shape():
    assert json.loads(error_payload("r", "T", "m")) == {"errorMessage": "m", "errorType": "T", "requestId": "r",
                                                        "stackTrace": []}
