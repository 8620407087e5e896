"""Supervision with fakes: ordering, readiness gating, failures, restarts and stopping."""

from __future__ import annotations

import threading

import pytest

from devenv.errors import DevenvError
from devenv.health import NeverReady, wait_until
from devenv.runtime.record import ComponentState, StackPhase
from devenv.supervisor import RestartPolicy, Supervisor, start_layers

from .fakes import FakeComponent, FakeLauncher


class Harness:
    def __init__(self, components, policy=None, **options):
        self.launcher = FakeLauncher()
        self.records = []
        self.supervisor = Supervisor("test", components, launcher=self.launcher,
                                     on_record=self.records.append, policy=policy, **options)
        self.result = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.result = self.supervisor.run()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.supervisor.request_stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "supervisor did not stop"

    def wait_phase(self, phase, timeout=5.0):
        assert wait_until(lambda: self.supervisor.record.phase is phase, timeout=timeout), \
            f"phase is {self.supervisor.record.phase}, wanted {phase}"

    def state(self, name):
        return self.supervisor.record.component(name).state


def test_layers_follow_dependencies():
    comps = [FakeComponent("app", depends_on=("db", "cache")), FakeComponent("db"), FakeComponent("cache")]
    assert start_layers(comps) == [["db", "cache"], ["app"]]


def test_cycle_and_unknown_dependency_are_errors():
    with pytest.raises(DevenvError, match="cycle"):
        start_layers([FakeComponent("a", depends_on=("b",)), FakeComponent("b", depends_on=("a",))])
    with pytest.raises(DevenvError, match="unknown component"):
        start_layers([FakeComponent("a", depends_on=("zz",))])


def test_all_ready_then_stop_in_reverse_order():
    db, app = FakeComponent("db"), FakeComponent("app", depends_on=("db",))
    with Harness([db, app]) as h:
        h.wait_phase(StackPhase.READY)
        assert db.after_ready_calls == [False]
        first_app = h.launcher.of("app")[0]
    assert h.result.phase is StackPhase.STOPPED
    assert all(c.state is ComponentState.STOPPED for c in h.result.components)
    assert first_app.stopped_with is not None
    assert h.launcher.stops == ["app", "db"]
    assert [h.spec.name for h in h.launcher.handles] == ["db", "app"]


def test_dependent_waits_for_dependency_readiness():
    db, app = FakeComponent("db"), FakeComponent("app", depends_on=("db",))
    db.ready.clear()
    with Harness([db, app]) as h:
        assert wait_until(lambda: h.launcher.of("db"), timeout=5)
        assert h.launcher.of("app") == []
        assert h.state("app") is ComponentState.PENDING
        db.ready.set()
        h.wait_phase(StackPhase.READY)
        assert len(h.launcher.of("app")) == 1


def test_exit_before_ready_fails_the_stack_and_stops_the_rest():
    db, other = FakeComponent("db"), FakeComponent("other")
    db.ready.clear()
    h = Harness([db, other])
    h.thread.start()
    assert wait_until(lambda: h.launcher.of("db"), timeout=5)
    h.launcher.of("db")[0].exit(1)
    h.thread.join(timeout=10)
    assert h.result.phase is StackPhase.FAILED
    assert h.result.error_component == "db"
    assert "exited with code 1 before becoming ready" in h.result.error
    assert all(not x.alive for x in h.launcher.handles)


def test_readiness_deadline_names_the_component():
    slow = FakeComponent("slow", startup_timeout=0.2)
    slow.ready.clear()
    h = Harness([slow])
    h.thread.start()
    h.thread.join(timeout=10)
    assert h.result.phase is StackPhase.FAILED
    assert h.result.error_component == "slow"
    assert "not ready after 0.2s" in h.result.error


def test_a_probe_that_knows_the_component_cannot_start_ends_the_wait_at_once():
    ecs, other = FakeComponent("ecs", startup_timeout=60), FakeComponent("other")
    ecs.ready.clear()
    h = Harness([ecs, other])
    h.thread.start()
    assert wait_until(lambda: h.launcher.of("ecs"), timeout=5)
    assert h.supervisor.record.phase is StackPhase.STARTING
    ecs.cannot_start = NeverReady("placement-service", "tasks exit before becoming healthy (2 in a row, exit code 1)",
                                  ("ModuleNotFoundError: No module named 'uvicorn'",))
    h.thread.join(timeout=10)  # well before the 60 s deadline
    assert not h.thread.is_alive()
    assert h.result.phase is StackPhase.FAILED
    assert h.result.error_component == "placement-service"
    assert h.result.error == "tasks exit before becoming healthy (2 in a row, exit code 1)"
    assert h.result.error_details == ("ModuleNotFoundError: No module named 'uvicorn'",)
    failed = [r.component("ecs") for r in h.records
              if r.component("ecs") and r.component("ecs").state is ComponentState.FAILED]
    assert failed and failed[0].message == ("placement-service: tasks exit before becoming healthy "
                                            "(2 in a row, exit code 1)")
    assert all(not x.alive for x in h.launcher.handles)


def test_prepare_failure_carries_its_output():
    bad = FakeComponent("db", prepare_error="initdb failed")
    h = Harness([bad])
    h.thread.start()
    h.thread.join(timeout=10)
    assert h.result.phase is StackPhase.FAILED
    assert "initdb failed" in h.result.error
    assert h.result.error_details == ("initdb: boom",)
    assert h.launcher.handles == []


def test_a_container_is_recorded_by_its_id_while_it_runs():
    h = Harness([FakeComponent("db")])
    h.launcher.container_ids["db"] = "0123456789ab"  # what ContainerHandle gives (no host pid there)
    with h:
        h.wait_phase(StackPhase.READY)
        assert h.supervisor.record.component("db").container == "0123456789ab"
    assert h.result.component("db").container is None  # stopped: nothing runs


def test_crash_after_ready_restarts_and_calls_after_ready_again():
    db = FakeComponent("db")
    with Harness([db], policy=RestartPolicy(first_delay=0.01)) as h:
        h.wait_phase(StackPhase.READY)
        h.launcher.of("db")[0].exit(-9)
        assert wait_until(lambda: len(h.launcher.of("db")) == 2, timeout=5)
        h.wait_phase(StackPhase.READY)
        record = h.supervisor.record.component("db")
        assert record.restarts == 1
        assert record.last_exit == "killed by SIGKILL"
        assert db.after_ready_calls == [False, True]


def test_gives_up_after_too_many_restarts():
    db, ok = FakeComponent("db"), FakeComponent("ok")
    with Harness([db, ok], policy=RestartPolicy(first_delay=0.01, max_restarts=2)) as h:
        h.wait_phase(StackPhase.READY)
        for expected in (1, 2, 3):
            assert wait_until(lambda: len(h.launcher.of("db")) == expected, timeout=5)
            assert wait_until(lambda: h.state("db") is ComponentState.READY, timeout=5)
            h.launcher.of("db")[-1].exit(1)
        assert wait_until(lambda: h.state("db") is ComponentState.FAILED, timeout=5)
        assert "gave up after 2 restarts" in h.supervisor.record.component("db").message
        assert h.supervisor.record.phase is StackPhase.DEGRADED
        assert h.state("ok") is ComponentState.READY


def test_restart_policy_backoff_is_exponential_and_capped():
    policy = RestartPolicy(first_delay=0.5, max_delay=3, max_restarts=5)
    assert [policy.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 3, 3, None]


def test_a_ready_component_that_stops_answering_is_shown_unhealthy_then_recovers():
    db = FakeComponent("db")
    h = Harness([db], liveness_interval=0.01)
    with h:
        h.wait_phase(StackPhase.READY)
        db.ready.clear()
        assert wait_until(lambda: h.state("db") is ComponentState.UNHEALTHY, timeout=5)
        assert h.supervisor.record.phase is StackPhase.DEGRADED
        assert "not answering its probe" in h.supervisor.record.component("db").message
        db.ready.set()
        h.wait_phase(StackPhase.READY)
        assert len(h.launcher.of("db")) == 1  # shown, not restarted
