"""Pure: slow start mode, a newly healthy target's share of requests ramping up linearly.

AWS behaviour copied here (Elastic Load Balancing user guide, "Target groups for your
Application Load Balancers", sections "Slow start mode" and "Routing algorithm", and the
``slow_start.duration_seconds`` target group attribute;
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html#slow-start-mode):

- ``slow_start.duration_seconds`` is 30-900 seconds, or 0 (the default) for off; it cannot be
  combined with the least outstanding requests algorithm (``devenv.config.model`` refuses both).
- A target enters slow start when the target group considers it healthy; it leaves when the
  duration has elapsed or it becomes unhealthy, and enters again when it is healthy again. A
  deregistered target leaves slow start (a target registered again is a new one).
- Newly healthy targets enter slow start only when at least one healthy target is not in slow
  start: the first target of an empty group gets a full share at once.
- The load balancer linearly increases the number of requests it sends to a target in slow
  start, up to a full share when the duration ends. devenv gives such a target a weight of
  ``elapsed / duration`` in the round robin (``share``), so with n targets in full service it
  gets ``w / (n + w)`` of the requests; ``admit`` spreads its turns evenly.
- Sticky sessions override the algorithm after the first choice, so a request with a
  stickiness cookie still goes to its target while that target is in slow start.
"""

from __future__ import annotations


def enters(duration: float, others_in_full_service: bool) -> bool:
    """Whether a target that has just become healthy starts in slow start mode."""
    return duration > 0 and others_in_full_service


def share(elapsed: float, duration: float) -> float:
    """The fraction of a full share a target gets ``elapsed`` seconds into its slow start:
    0 at the start, 1 (slow start over) once ``duration`` has passed."""
    if elapsed >= duration:
        return 1.0
    return max(0.0, elapsed / duration)


def admit(credit: float, fraction: float) -> tuple[bool, float]:
    """A slow-starting target's turn in the round robin: its credit grows by ``fraction`` of a
    request, and it takes the request when a whole one has built up. Returns (taken, the new
    credit); over many turns the target takes ``fraction`` of them, evenly spread."""
    credit += fraction
    if credit >= 1.0:
        return True, credit - 1.0
    return False, credit
