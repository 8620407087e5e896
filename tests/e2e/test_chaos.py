"""A short chaos run (benchmarks/chaos.py) in the e2e suite: placements driven through the
API while processes are killed with -9; every accepted placement must end decided with
exactly one notification, and the stack healthy.

On the docker runtime the infra and the Lambda instances are containers, killed through
their init's host pid. The kinds of kill asserted are those whose durability the stack has: ECS tasks and Lambda
worker instances (the work waits in SQS and Postgres), the emulator (its managed plane is
journaled), Redis (a cache) and Postgres (synchronous_commit=on). The supervisor is left
out here for time (its kill means a whole `devenv up`); the long run with every kind is
`python benchmarks/chaos.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from chaos import Chaos  # noqa: E402

pytestmark = pytest.mark.e2e

KILLS = {"task": 2, "worker": 2, "emulator": 1, "redis": 1, "postgres": 1}


def test_chaos_loses_nothing_acknowledged(devenv_stack):
    kills = dict(KILLS)
    if devenv_stack.stack.config.emulator.kind != "moto":
        # Only moto's managed plane is made durable (docs/emulators.md): a killed ministack or
        # LocalStack forgets its queued messages, as the docs say, so it is not killed here.
        kills.pop("emulator")
    chaos = Chaos(devenv_stack.stack, placements=60, rate=6, kills=kills, seed=13, quiet=45, drain_timeout=180,
                  log=lambda line: print(line, flush=True))
    outcome = chaos.run()
    print(outcome.table(), *outcome.kills, sep="\n")
    assert len(outcome.kills) == sum(kills.values())
    assert not [k for k in outcome.kills if "not done" in k], outcome.kills
    # The run did put the stack under load. On the docker runtime a killed task's replacement
    # is a new container (seconds, not a fraction of one), so when both of a service's tasks
    # are hit the ALB has no healthy target for longer and more requests fail (503, never
    # acknowledged, so never counted as lost).
    floor = 10 if devenv_stack.stack.config.runtime == "docker" else 30
    assert len(outcome.accepted) >= floor, outcome.failures
    assert outcome.lost == [] and outcome.stuck == [], outcome.table()
    assert outcome.duplicates == 0, outcome.table()
    assert outcome.healthy, outcome.health
