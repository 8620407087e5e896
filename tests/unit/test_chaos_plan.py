"""benchmarks/chaos.py's pure parts: the --kills grammar and the kill schedule."""

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from chaos import Kill, Outcome, parse_kills, plan_kills  # noqa: E402


def test_kills_are_parsed_by_kind():
    assert parse_kills("task=8, worker=2,postgres=1") == {"task": 8, "worker": 2, "postgres": 1}
    assert parse_kills("") == {}


@pytest.mark.parametrize("text,message", [("tasks=2", "unknown kind 'tasks'"), ("task", "needs a count"),
                                          ("task=x", "needs a count")])
def test_a_bad_kill_list_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_kills(text)


def test_kills_fall_inside_the_drive_in_time_order_and_repeat_with_a_seed():
    plan = plan_kills({"task": 5, "postgres": 1, "supervisor": 1}, 100.0, random.Random(7))
    assert sorted(k.kind for k in plan) == ["postgres", "supervisor"] + ["task"] * 5
    assert all(10.0 <= k.at <= 70.0 for k in plan if k.kind != "supervisor")
    assert plan[-1].kind == "supervisor" and 70.0 <= plan[-1].at <= 85.0  # its `devenv up` comes last
    assert [k.at for k in plan] == sorted(k.at for k in plan)
    assert plan == plan_kills({"task": 5, "postgres": 1, "supervisor": 1}, 100.0, random.Random(7))
    assert plan_kills({}, 100.0, random.Random(7)) == [] and isinstance(plan[0], Kill)


def test_the_table_names_what_failed_and_what_was_lost():
    outcome = Outcome(requested=3, accepted=["a", "b"], lost=["b"], stuck=["b"], drain_seconds=None, health=["redis failed"])
    outcome.failures["HTTP 503 database unavailable"] += 1
    table = outcome.table()
    assert "| failed requests | 1 (1x HTTP 503 database unavailable) |" in table
    assert "| lost (accepted, never finished) | 1 (no row: 0, pending: 1) |" in table
    assert "| drain (after the last request) | never |" in table
    assert "| stack healthy at the end (within 90 s) | no: redis failed |" in table
