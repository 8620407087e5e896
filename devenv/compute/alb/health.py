"""Pure: the health of one target in an ALB target group, as its health checks decide it.

AWS behaviour copied here (Elastic Load Balancing user guide, "Health checks for Application
Load Balancer target groups", "Target groups for your Application Load Balancers" and the API
reference for TargetHealth;
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html,
https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html):

- States: ``initial`` (registration in progress, or the initial health checks are still being
  performed), ``healthy``, ``unhealthy``, ``draining`` (deregistering, in-flight requests are
  completing) and ``unused`` (not registered).
- A newly registered target must pass **one** health check to be considered healthy ("After
  your target is registered, it must pass one health check to be considered healthy"), so
  INITIAL -> HEALTHY takes one success, not HealthyThresholdCount. An initial target that
  fails UnhealthyThresholdCount consecutive checks becomes unhealthy.
- A healthy target becomes unhealthy after UnhealthyThresholdCount consecutive failures; an
  unhealthy one is put back in service after HealthyThresholdCount consecutive successes.
- A check succeeds when the response's status code is one of the Matcher's ("200",
  "200,202", "200-299"; for HTTP the codes lie between 200 and 499). For a GRPC target group
  the check is a gRPC call and the codes are its gRPC status (Matcher.GrpcCode, 0-99, default
  12: UNIMPLEMENTED, what a server without ``/AWS.ALB/healthcheck`` answers). Reason codes: a status
  outside the matcher is ``Target.ResponseCodeMismatch``; no answer within the timeout is
  ``Target.Timeout``; a refused/reset connection or a malformed response is
  ``Target.FailedHealthChecks``.
- Deregistration (see ``drain_finished``): the target stops receiving new requests at once;
  the deregistration completes when it has no in-flight request or when the deregistration
  delay elapses, whichever comes first.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from devenv.config.model import HTTP_CODES, TargetGroupHealthCheckConfig, code_ranges


class TargetState(enum.Enum):
    INITIAL = "initial"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"
    UNUSED = "unused"


class Reason(str, enum.Enum):
    """TargetHealth reason codes (none is given for a healthy target)."""

    REGISTRATION_IN_PROGRESS = "Elb.RegistrationInProgress"
    INITIAL_HEALTH_CHECKING = "Elb.InitialHealthChecking"
    RESPONSE_CODE_MISMATCH = "Target.ResponseCodeMismatch"
    TIMEOUT = "Target.Timeout"
    FAILED_HEALTH_CHECKS = "Target.FailedHealthChecks"
    INTERNAL_ERROR = "Elb.InternalError"
    DEREGISTRATION_IN_PROGRESS = "Target.DeregistrationInProgress"
    NOT_REGISTERED = "Target.NotRegistered"


@dataclass(frozen=True)
class Matcher:
    """The success codes of a health check: a union of inclusive ranges."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str, bounds: tuple[int, int] = HTTP_CODES) -> "Matcher":
        """``"200"``, ``"200,204"``, ``"200-299"`` or a mix (``"200-204,301"``), each code
        within ``bounds``: AWS's HTTP range 200-499, or ``GRPC_CODES`` (0-99) for gRPC status
        codes. Raises ValueError for anything else."""
        return cls(code_ranges(text, bounds))

    def __contains__(self, status: object) -> bool:
        return isinstance(status, int) and any(low <= status <= high for low, high in self.ranges)


@dataclass(frozen=True)
class ProbeResult:
    """What one health check saw: an HTTP status, or why there was none."""

    status: int | None = None
    failure: Reason | None = None  # TIMEOUT or FAILED_HEALTH_CHECKS when status is None
    detail: str = ""

    @classmethod
    def answered(cls, status: int) -> "ProbeResult":
        return cls(status=status)

    @classmethod
    def timed_out(cls, detail: str = "Request timed out") -> "ProbeResult":
        return cls(failure=Reason.TIMEOUT, detail=detail)

    @classmethod
    def failed(cls, detail: str = "Health checks failed") -> "ProbeResult":
        return cls(failure=Reason.FAILED_HEALTH_CHECKS, detail=detail)


@dataclass
class HealthRecord:
    """The health-check state machine of one registered target (DRAINING and UNUSED are the
    target group's business: a draining target is no longer checked)."""

    state: TargetState = TargetState.INITIAL
    reason: Reason | None = Reason.REGISTRATION_IN_PROGRESS
    description: str = "Target registration is in progress"
    successes: int = 0  # consecutive
    failures: int = 0  # consecutive
    last_failure: str = ""  # what the most recent failed check saw, whatever the state

    def checking(self) -> None:
        """The first health check has started."""
        if self.state is TargetState.INITIAL and self.reason is Reason.REGISTRATION_IN_PROGRESS:
            self.reason = Reason.INITIAL_HEALTH_CHECKING
            self.description = "Initial health checks in progress"

    def observe(self, result: ProbeResult, matcher: Matcher,
                settings: TargetGroupHealthCheckConfig) -> TargetState:
        """Counts one check and returns the (possibly new) state."""
        if result.status is not None and result.status in matcher:
            self.successes += 1
            self.failures = 0
            if self.state is TargetState.INITIAL or (
                    self.state is TargetState.UNHEALTHY and self.successes >= settings.healthy_threshold):
                self._become(TargetState.HEALTHY, None, "")
            return self.state

        self.failures += 1
        self.successes = 0
        if result.status is not None:
            reason = Reason.RESPONSE_CODE_MISMATCH
            detail = f"Health checks failed with these codes: [{result.status}]"
        else:
            reason = result.failure or Reason.FAILED_HEALTH_CHECKS
            detail = result.detail or "Health checks failed"
        self.last_failure = f"{reason.value}: {detail}"
        if self.state is TargetState.UNHEALTHY:
            self.reason, self.description = reason, detail
        elif self.failures >= settings.unhealthy_threshold:
            self._become(TargetState.UNHEALTHY, reason, detail)
        elif self.state is TargetState.INITIAL:
            self.reason = Reason.INITIAL_HEALTH_CHECKING
            self.description = f"Initial health checks in progress (last: {detail})"
        return self.state

    def _become(self, state: TargetState, reason: Reason | None, description: str) -> None:
        self.state, self.reason, self.description = state, reason, description


def drain_finished(in_flight: int, elapsed: float, delay: float) -> bool:
    """Whether a deregistering target is done: no request in flight, or the deregistration
    delay has elapsed (requests still in flight then are cut; AWS answers them with 502)."""
    return in_flight == 0 or elapsed >= delay
