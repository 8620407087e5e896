"""Deploy the managed plane of a stack: observe, plan, apply, report.

Idempotent: a second deploy of the same config observes what the first made and plans
nothing. Failures are DeployError naming the resource and listing what was applied before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from devenv.aws.api import BotoPlaneApi, ManagedPlaneApi
from devenv.aws.endpoint import AwsEndpoint
from devenv.aws.plan import Action, plan
from devenv.aws.resources import desired_plane
from devenv.config.model import StackConfig
from devenv.errors import DeployError

__all__ = ["AwsEndpoint", "DeployReport", "deploy", "plan_only"]


@dataclass(frozen=True)
class DeployReport:
    """The planned actions, whether they were applied, and how long it took."""

    actions: tuple[Action, ...]
    applied: bool
    seconds: float

    @property
    def changes(self) -> tuple[Action, ...]:
        """Actions that change the emulator (planned, or done when ``applied``)."""
        return tuple(a for a in self.actions if a.mutates)

    @property
    def notices(self) -> tuple[Action, ...]:
        """Things kept on purpose (e.g. a non-empty bucket no longer in the config)."""
        return tuple(a for a in self.actions if not a.mutates)

    @property
    def changed(self) -> bool:
        """True when this deploy changed something in the emulator."""
        return self.applied and bool(self.changes)

    def lines(self) -> list[str]:
        return [a.describe() for a in self.actions]


def plan_only(config: StackConfig, endpoint: AwsEndpoint, *,
              api: ManagedPlaneApi | None = None) -> DeployReport:
    """The actions a deploy would take, without taking them (dry run)."""
    started = time.perf_counter()
    actions = _plan(config, endpoint, api or BotoPlaneApi(endpoint))
    return DeployReport(tuple(actions), applied=False, seconds=time.perf_counter() - started)


def deploy(config: StackConfig, endpoint: AwsEndpoint, *,
           api: ManagedPlaneApi | None = None) -> DeployReport:
    """Make the emulator at ``endpoint`` hold exactly the config's managed plane.

    Stops at the first failing action (later ones may depend on it) with a DeployError
    whose details list what had been applied.
    """
    started = time.perf_counter()
    api = api or BotoPlaneApi(endpoint)
    actions = _plan(config, endpoint, api)
    done: list[Action] = []
    for action in actions:
        if not action.mutates:
            continue
        try:
            api.apply(action)
        except DeployError as exc:
            applied = [f"applied before the failure: {a.describe()}" for a in done]
            raise DeployError(exc.message, hint=exc.hint, details=[*exc.details, *applied]) from exc
        done.append(action)
    return DeployReport(tuple(actions), applied=True, seconds=time.perf_counter() - started)


def _plan(config: StackConfig, endpoint: AwsEndpoint, api: ManagedPlaneApi) -> list[Action]:
    if endpoint.region != config.region:
        raise DeployError(f"the emulator endpoint serves {endpoint.region} but stack "
                          f"'{config.name}' lives in {config.region}")
    desired = desired_plane(config, account=api.account())
    return plan(desired, api.observe(), config.name)
