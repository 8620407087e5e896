"""`devenv interrupt` says which FARGATE_SPOT tasks it interrupted, when it found fewer than
asked, and, with none to interrupt, why (an error naming the strategy or the setting)."""

import pytest

from devenv.cli import _interrupt_report
from devenv.errors import DevenvError

STRATEGY = [{"capacity_provider": "FARGATE_SPOT", "weight": 80, "base": 0},
            {"capacity_provider": "FARGATE", "weight": 20, "base": 1}]


def test_interrupted_tasks_are_named_with_what_follows():
    lines = _interrupt_report("placement-service", 2, {"interrupted": ["a" * 32, "b" * 32], "spotRunning": 4,
                                                       "warning": 5.0, "capacityProviderStrategy": STRATEGY})
    assert lines[0] == f"placement-service: Spot interruption of 2 FARGATE_SPOT tasks: {'a' * 32} {'b' * 32}"
    assert "replaced by the capacity provider strategy" in lines[1] and "5s after the notice" in lines[1]


def test_fewer_spot_tasks_than_asked_says_so():
    lines = _interrupt_report("placement-service", 3, {"interrupted": ["a" * 32], "spotRunning": 1,
                                                       "warning": 120, "capacityProviderStrategy": STRATEGY})
    assert lines[0].endswith(f"1 FARGATE_SPOT task: {'a' * 32}")
    assert "3 asked for, 1 running on FARGATE_SPOT" in lines[1]


def test_no_spot_task_is_an_error_naming_the_strategy_or_the_setting():
    with pytest.raises(DevenvError) as error:
        _interrupt_report("placement-service", 1, {"interrupted": [], "spotRunning": 0, "warning": 5,
                                                   "capacityProviderStrategy": STRATEGY})
    assert "has no running FARGATE_SPOT task" in str(error.value)
    assert "FARGATE_SPOT weight 80, FARGATE weight 20 base 1" in error.value.hint
    with pytest.raises(DevenvError) as error:
        _interrupt_report("keeper", 1, {"interrupted": [], "spotRunning": 0, "warning": 5,
                                        "capacityProviderStrategy": []})
    assert "services.keeper.capacity_provider_strategy" in error.value.hint
