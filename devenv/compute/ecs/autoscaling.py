"""Target tracking on a service's average CPU, as Application Auto Scaling does it for ECS.

Pure: given the recent average, the current desired count and the time of the last scaling
activities, decide the new desired count; and where a requested desired count lands within the
scalable target's [min, max]. The scheduler measures CPU and applies the results.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from devenv.config.model import AutoscalingConfig

# Target tracking scales in more cautiously than it scales out: it only removes capacity
# when the metric is clearly below the target (AWS documents scale-in as gradual).
SCALE_IN_MARGIN = 0.9


class ScalingCause(enum.Enum):
    """Why target tracking changed the count: its high or low alarm, or a min/max that moved."""

    ALARM_HIGH = "high"
    ALARM_LOW = "low"
    BOUNDS = "bounds"


@dataclass(frozen=True)
class ScalingDecision:
    desired: int
    reason: str | None = None  # None: no change
    cause: ScalingCause | None = None


@dataclass(frozen=True)
class DesiredCount:
    """A requested desired count and the one the service takes: ``bound`` names the limit
    ("min" or "max") it was clamped to, None when it was within range (or no autoscaling)."""

    requested: int
    desired: int
    bound: str | None = None


def within_bounds(config: AutoscalingConfig | None, requested: int) -> DesiredCount:
    """The desired count a service with autoscaling ``config`` takes for ``requested``: the
    scalable target's min and max hold whoever sets the count (devenv.yaml, `devenv scale`)."""
    if config is not None and requested > config.max:
        return DesiredCount(requested, config.max, "max")
    if config is not None and requested < config.min:
        return DesiredCount(requested, config.min, "min")
    return DesiredCount(requested, requested)


@dataclass
class ScalingState:
    last_scale_out: float = -math.inf
    last_scale_in: float = -math.inf


def decide(config: AutoscalingConfig, *, current: int, average_cpu: float | None, now: float,
           state: ScalingState) -> ScalingDecision:
    """The desired count target tracking asks for now.

    desired = ceil(current x average / target), clamped to [min, max]. Scale-out waits for
    ``scale_out_cooldown`` since the last scale-out; scale-in waits for ``scale_in_cooldown``
    since the last scaling activity of either kind, and needs the average below 90% of the
    target so a service hovering at the target does not flap."""
    clamped = within_bounds(config, current)
    if clamped.bound is not None:
        return ScalingDecision(clamped.desired, f"desired count {current} is outside [{config.min}, {config.max}]",
                               ScalingCause.BOUNDS)
    if average_cpu is None or current == 0:
        return ScalingDecision(current)
    wanted = min(max(math.ceil(current * average_cpu / config.target_cpu), config.min), config.max)
    if wanted > current and now - state.last_scale_out >= config.scale_out_cooldown:
        return ScalingDecision(wanted, f"average CPU {average_cpu:.0f}% above target {config.target_cpu:.0f}%: "
                                       f"{current} -> {wanted} tasks", ScalingCause.ALARM_HIGH)
    last_activity = max(state.last_scale_out, state.last_scale_in)
    if (wanted < current and average_cpu < config.target_cpu * SCALE_IN_MARGIN
            and now - last_activity >= config.scale_in_cooldown):
        return ScalingDecision(wanted, f"average CPU {average_cpu:.0f}% below target {config.target_cpu:.0f}%: "
                                       f"{current} -> {wanted} tasks", ScalingCause.ALARM_LOW)
    return ScalingDecision(current)
