"""The CLI's tables at 80 columns and through a pipe: ids, names, addresses and states whole.

Each table is printed by the CLI's own function (rows built as the command builds them) to a
rich Console of a fixed width: a terminal 80 columns wide (fitted: columns dropped or grouped,
nothing cut) and a non-terminal file (plain: no box, no colour, every column, nothing cut).
"""

from __future__ import annotations

import io

import pytest
from rich.cells import cell_len
from rich.console import Console

import devenv.cli as cli
from devenv.cli_table import Column, Layout, layout, min_widths
from devenv.observe.dashboard import ComponentView, ServiceView, Snapshot
from devenv.observe.queues import QueueDepth
from devenv.observe.spans import TraceSummary
from devenv.runtime.record import ComponentRecord, ComponentState, StackPhase, StackRecord

NOW = 1_800_000_000.0
BOX = set("│┃─━┏┓┗┛┡┩╇╭╮╰╯┼├┤")
TRACES = ["1-6b0fbd1a-0123456789abcdef01234567", "1-6b0fbd1b-fedcba9876543210fedcba98"]
TASKS = [  # service, task id (32 hex, as ECS), address, status, health, stopped reason
    ("notification-service", "0f3c2a9e8d7b4c6aa1b2c3d4e5f60718", "127.0.0.103:8000", "RUNNING", "HEALTHY", ""),
    ("placement-service", "4f1c0d1e2a3b4c5d6e7f8091a2b3c4d5", "127.0.0.12:8000", "RUNNING", "HEALTHY", ""),
    ("placement-service", "9a8b7c6d5e4f30211234567890abcdef", "127.0.0.13:8000", "DEPROVISIONING", "UNHEALTHY",
     "Task failed container health checks"),
    ("validation-service", "c0ffee00c0ffee00c0ffee00c0ffee00", "127.0.0.27:8000", "STOPPED", "UNKNOWN",
     "Essential container in task exited (exit code -9)"),
]


def terminal(width: int = 80) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None, soft_wrap=True)


def pipe() -> Console:
    return Console(file=io.StringIO(), width=80, soft_wrap=True)


@pytest.fixture(params=["terminal", "pipe"])
def console(request, monkeypatch) -> Console:
    made = terminal() if request.param == "terminal" else pipe()
    monkeypatch.setattr(cli, "out", made)
    return made


def printed(console: Console) -> list[str]:
    return console.file.getvalue().splitlines()


def check_whole(console: Console, values, rows=()) -> list[str]:
    """Each value appears verbatim on one line; a terminal's lines fit its width, nothing is
    cut (…); piped output is plain and every row is one line holding all its values."""
    lines = printed(console)
    text = "\n".join(lines)
    assert "…" not in text
    for value in values:
        assert any(value in line for line in lines), (value, text)
    if console.is_terminal:
        assert all(cell_len(line) <= console.width for line in lines), text
    else:
        assert not BOX & set(text) and "\x1b" not in text
        for row in rows:
            assert any(all(v in line for v in row) for line in lines), (row, text)
    return lines


def test_ps(console):
    tasks = [{"service": s, "taskId": t, "revision": 3, "address": a, "lastStatus": st, "healthStatus": h,
              "cpuPercent": 12.5, "memoryMiB": 48.0, "startedAt": NOW - 725, "stoppedReason": r,
              "capacityProvider": "FARGATE_SPOT" if s == "placement-service" else "FARGATE"}
             for s, t, a, st, h, r in TASKS]
    cli._print_tasks(tasks, NOW)
    lines = check_whole(console, [v for row in TASKS for v in row[:5]], rows=[[v for v in row if v] for row in TASKS])
    if not console.is_terminal:
        assert lines[0].split() == ["service", "task", "rev", "provider", "address", "status", "health", "cpu", "%",
                                    "mem", "MiB", "started", "stopped", "reason"]
        assert "FARGATE_SPOT" in lines[2] and "FARGATE_SPOT" not in lines[1]
        assert "12m05s ago" in lines[1] and "Essential container in task exited (exit code -9)" in lines[-1]


def test_ps_shows_a_blue_green_service_s_task_sets_and_their_traffic(console):
    tasks = [{"service": "web", "taskId": t, "revision": r, "address": a, "lastStatus": "RUNNING",
              "healthStatus": "HEALTHY", "cpuPercent": 1.0, "memoryMiB": 40.0, "startedAt": NOW - 60,
              "stoppedReason": None, "taskSet": role, "traffic": traffic}
             for t, r, a, role, traffic in (("a" * 32, 1, "127.9.0.2:8000", "blue", 90),
                                            ("b" * 32, 2, "127.9.0.3:8000", "green", 10))]
    cli._print_tasks(tasks, NOW)
    lines = check_whole(console, ["a" * 32, "b" * 32])  # a narrow terminal drops the task set first
    if not console.is_terminal:
        assert lines[0].split()[:6] == ["service", "task", "rev", "set", "provider", "address"]
        assert "blue 90%" in lines[1] and "green 10%" in lines[2]


def test_trace_list(console):
    summaries = [TraceSummary(t, NOW, 1234.5, 42, n, "apigateway POST /placements",
                              ("apigateway", "lambda", "alb", "ecs", "eventbridge", "sqs", "event-source"))
                 for n, t in enumerate(TRACES)]
    cli._print_trace_list(summaries)
    check_whole(console, TRACES, rows=[[t, "apigateway POST /placements", "1234.5 ms",
                                        "apigateway → lambda → alb → ecs → eventbridge → sqs → event-source"]
                                       for t in TRACES])


def test_status_components_and_services(console):
    components = (
        ComponentRecord("postgres", "postgres", ComponentState.READY, "127.0.0.1:54321", pid=412345,
                        started_at=NOW - 4000, restarts=1, message="killed by SIGKILL; restarted"),
        ComponentRecord("emulator", "moto", ComponentState.READY, "127.0.0.1:45677", pid=412346, started_at=NOW - 60),
        ComponentRecord("ecs", "ecs", ComponentState.STARTING, "127.0.0.1:40123", pid=412399, started_at=NOW - 2),
    )
    record = StackRecord("nedlia", 1, None, NOW - 4000, StackPhase.READY, components)
    cli._print_components(record, True, NOW)
    cli._print_services([{"serviceName": "notification-service", "desiredCount": 2, "runningCount": 2,
                          "healthyCount": 1, "revision": 12,
                          "deployments": [{"rolloutState": "IN_PROGRESS", "reason": ""}]}])
    check_whole(console, ["postgres", "127.0.0.1:54321", "ready", "starting", "notification-service", "IN_PROGRESS"],
                rows=[["postgres", "ready", "127.0.0.1:54321", "412345", "killed by SIGKILL; restarted"]])


def test_queues(console):
    rows = [QueueDepth("nedlia-notification", "u1", 3, 1, 0, dlq="nedlia-notification-dlq", max_receive_count=3,
                       dlq_depth=2),
            QueueDepth("nedlia-notification-dlq", "u2", 2, 0, 0, sources=("nedlia-notification",))]
    cli._print_queues(rows)
    check_whole(console, ["nedlia-notification-dlq", "nedlia-notification"],
                rows=[["nedlia-notification", "nedlia-notification-dlq (after 3)"],
                      ["nedlia-notification-dlq", "DLQ of nedlia-notification"]])


def test_dashboard_frame(console):
    snap = Snapshot("nedlia", True, "ready",
                    components=(ComponentView("validation-worker-pool", "ready", "127.0.0.1:45678", 0),),
                    services=(ServiceView("notification-service", 2, 2, 2, "COMPLETED"),),
                    queues=(QueueDepth("nedlia-validation-dlq", "u", 1, 0, 0, sources=("nedlia-validation",)),),
                    traces=tuple(TraceSummary(t, NOW, 12.5, 7, 0, "apigateway POST /placements", ()) for t in TRACES),
                    graph={"edges": [{"source": "placement-service", "target": "nedlia-events", "count": 3,
                                      "errors": 0}]})
    console.print(cli._dashboard_frame(snap))
    check_whole(console, [*TRACES, "validation-worker-pool", "127.0.0.1:45678", "notification-service",
                          "nedlia-validation-dlq", "placement-service", "nedlia-events"])


def test_a_terminal_drops_the_least_useful_columns_first():
    columns = (Column("id", whole=True), Column("a", drop=1), Column("b", drop=2), Column("c"))
    widths = [30, 10, 10, 10]
    assert layout(columns, widths, 200).kept == (0, 1, 2, 3)
    assert layout(columns, widths, 60).kept == (0, 1, 3)  # b (drop=2) goes first
    assert layout(columns, widths, 52).kept == (0, 3)
    assert layout(columns, widths, 10).kept == (0, 3)  # never-dropped columns stay (rich folds them)


def test_a_group_column_becomes_headings_at_its_turn():
    columns = (Column("service", whole=True, group=True, drop=2), Column("task", whole=True),
               Column("started", drop=3), Column("cpu", drop=1))
    widths = [20, 32, 10, 5]
    assert layout(columns, widths, 80) == Layout((0, 1, 2, 3))
    assert layout(columns, widths, 70) == Layout((0, 1, 3))  # started (drop=3) goes before the grouping
    assert layout(columns, widths, 50) == Layout((1, 3), grouped=0)
    assert layout(columns, widths, 30) == Layout((1,), grouped=0)


def test_min_widths_whole_columns_take_their_longest_value_others_their_longest_word():
    columns = (Column("trace", whole=True), Column("first hop"))
    assert min_widths(columns, [(TRACES[0], "apigateway POST /placements")]) == [35, 11]


def test_narrower_than_the_kept_columns_folds_rather_than_cuts(monkeypatch):
    narrow = terminal(40)
    monkeypatch.setattr(cli, "out", narrow)
    cli._print_trace_list([TraceSummary(TRACES[0], NOW, 1.0, 1, 0, "apigateway POST /placements", ())])
    lines = printed(narrow)
    assert "…" not in "\n".join(lines) and all(cell_len(line) <= 40 for line in lines)
    assert TRACES[0] in "".join(line.split()[0] for line in lines[2:] if line.strip())  # folded, all there
