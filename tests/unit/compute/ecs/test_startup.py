"""When a service's tasks cannot start: consecutive crashes, ended by a passed health check."""

from devenv.compute.ecs.startup import CannotStart, Crash, CrashKind, StartupStreak

TRACEBACK = ("Traceback (most recent call last):", '  File "<string>", line 1, in <module>',
             "ModuleNotFoundError: No module named 'nope'")


def exited(task_id: str, code: int = 1, *, was_healthy: bool = False, output=TRACEBACK) -> Crash:
    return Crash(task_id, CrashKind.EXITED, Crash.exit_cause(code), was_healthy, output)


def test_one_crash_is_not_a_verdict():
    assert StartupStreak().verdict() is None
    assert StartupStreak().crashed(exited("a")).verdict() is None


def test_two_crashes_in_a_row_are_a_verdict_with_the_last_tasks_output():
    streak = StartupStreak().crashed(exited("a", output=("old",))).crashed(exited("b"))
    assert streak.verdict() == CannotStart("tasks exit before becoming healthy (2 in a row, exit code 1)", "b",
                                           TRACEBACK)


def test_a_passed_health_check_ends_the_streak():
    streak = StartupStreak().crashed(exited("a")).passed_health_check().crashed(exited("b"))
    assert streak.verdict() is None
    assert streak.crashed(exited("c")).verdict() is not None


def test_a_task_that_was_healthy_then_crashed_still_counts():
    streak = StartupStreak().crashed(exited("a")).crashed(exited("b", code=-9, was_healthy=True))
    assert streak.verdict().message == "tasks exit (2 in a row, killed by SIGKILL)"


def test_cannot_start_and_out_of_memory_say_so():
    cannot = Crash("a", CrashKind.CANNOT_START, "CannotStartContainerError: No such file or directory", False)
    verdict = StartupStreak().crashed(cannot).crashed(cannot).verdict()
    assert verdict.message == "tasks cannot start (2 in a row, CannotStartContainerError: No such file or directory)"
    assert verdict.output == ()
    oom = Crash("b", CrashKind.OUT_OF_MEMORY, "OutOfMemoryError: Container killed due to memory usage", False)
    assert StartupStreak().crashed(oom).crashed(oom).verdict().message == (
        "tasks run out of memory before becoming healthy (2 in a row, "
        "OutOfMemoryError: Container killed due to memory usage)")


def test_the_threshold_is_a_parameter():
    assert StartupStreak().crashed(exited("a")).verdict(threshold=1) is not None
    three = StartupStreak().crashed(exited("a")).crashed(exited("b")).crashed(exited("c", code=0))
    assert three.verdict().message == "tasks exit before becoming healthy (3 in a row, exit code 0)"


def test_exit_causes_name_signals():
    assert Crash.exit_cause(3) == "exit code 3"
    assert Crash.exit_cause(-15) == "killed by SIGTERM"
    assert Crash.exit_cause(-200) == "killed by signal 200"
