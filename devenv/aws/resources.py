"""The managed plane as data: what the config asks for and what the emulator holds.

Both sides use the same frozen dataclasses so ``plan`` can compare them field by field.
``stack`` on a resource is the value of its ``devenv:stack`` tag (None when untagged);
devenv only ever deletes resources carrying its own stack's tag.

EventBridge rules with a function target are deployed through an internal queue. The
emulator cannot deliver to Lambda (moto 5.2's put_events raises NotImplementedError, a 500
for the whole call, as soon as a matching rule has a Lambda target), and the functions run
in devenv's own compute plane anyway. So a target ``function: f`` becomes an SQS target on
the queue ``devenv-events-to-f`` (``function_events_queue``), one per function, created and
tagged like every other managed queue; the compute plane polls it and hands each event to
the function as an asynchronous (Event) invocation, which keeps Lambda's async semantics
(two retries, then the function's on-failure destination or DLQ). The mapping is visible:
``list_targets_by_rule`` shows the target's id (``function-f`` by default) with the queue's
ARN, not a Lambda ARN, and ``devenv`` plans show ``function-f -> queue devenv-events-to-f``.
The target's own retry policy and dead-letter queue apply to EventBridge's delivery to that
queue, as they would to its delivery to Lambda.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

from devenv.errors import DeployError

if TYPE_CHECKING:
    from devenv.config.model import StackConfig

STACK_TAG = "devenv:stack"
DEFAULT_BUS = "default"  # exists in every account; never created or deleted
# moto's fixed account; the real one is asked of the emulator (sts get_caller_identity).
DEFAULT_ACCOUNT = "123456789012"

# Queue attributes devenv owns; every other attribute is left as the emulator has it.
# RedrivePolicy is modelled separately (``Queue.redrive``) and FifoQueue is fixed at creation.
QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
)
JSON_QUEUE_ATTRIBUTES = frozenset({"Policy"})

# EventBridge's defaults for a target's retry policy.
DEFAULT_RETRY_ATTEMPTS = 185
DEFAULT_EVENT_AGE = 86400

# The internal queue between EventBridge and a function target (see the module docstring).
FUNCTION_EVENTS_QUEUE_PREFIX = "devenv-events-to-"
QUEUE_NAME_LIMIT = 80  # SQS
# SQS defaults, written out so the plan compares every attribute it owns.
DEFAULT_QUEUE_ATTRIBUTES = {
    "DelaySeconds": "0",
    "MaximumMessageSize": "262144",
    "MessageRetentionPeriod": "345600",
    "ReceiveMessageWaitTimeSeconds": "0",
    "VisibilityTimeout": "30",
}


class ResourceKind(Enum):
    BUCKET = "bucket"
    QUEUE = "queue"
    BUS = "bus"
    RULE = "rule"
    TARGETS = "targets"


class TargetKind(Enum):
    QUEUE = "queue"
    # A Lambda ARN seen on a rule. devenv itself deploys function targets as QUEUE targets
    # on the function's internal events queue (module docstring).
    FUNCTION = "function"
    OTHER = "other"  # seen on a rule, not made by devenv; its ``name`` is the full ARN


class RuleState(Enum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


@dataclass(frozen=True)
class Bucket:
    name: str
    versioning: bool = False
    stack: str | None = None
    empty: bool = True  # observed only; a non-empty bucket is never deleted


@dataclass(frozen=True)
class Redrive:
    """An SQS redrive policy: after ``max_receive_count`` receives a message moves to ``dlq``."""

    dlq: str
    max_receive_count: int


@dataclass(frozen=True)
class Queue:
    """An SQS queue; ``attributes`` maps AWS attribute names (QUEUE_ATTRIBUTES) to strings,
    as SQS returns them. A missing Policy means the queue has none."""

    name: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    redrive: Redrive | None = None
    stack: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")


@dataclass(frozen=True)
class Bus:
    name: str
    stack: str | None = None


@dataclass(frozen=True)
class Rule:
    """An EventBridge rule; ``pattern`` is the event pattern as JSON text."""

    bus: str
    name: str
    pattern: str
    state: RuleState = RuleState.ENABLED
    description: str = ""
    stack: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.bus, self.name)

    @property
    def label(self) -> str:
        return f"{self.bus}/{self.name}"


@dataclass(frozen=True)
class Target:
    """Where a rule sends matching events, named, not ARN'd, so the plan does not depend on
    the account; ``Arns.target`` makes the ARN when applying. A function target of the
    config is a QUEUE target on ``function_events_queue(function)``."""

    bus: str
    rule: str
    id: str
    kind: TargetKind
    name: str
    dead_letter_queue: str | None = None
    maximum_retry_attempts: int = DEFAULT_RETRY_ATTEMPTS
    maximum_event_age: int = DEFAULT_EVENT_AGE

    @property
    def rule_key(self) -> tuple[str, str]:
        return (self.bus, self.rule)


@dataclass(frozen=True)
class ManagedPlane:
    """Buckets, queues, buses, rules and targets, each tuple sorted by name."""

    buckets: tuple[Bucket, ...] = ()
    queues: tuple[Queue, ...] = ()
    buses: tuple[Bus, ...] = ()
    rules: tuple[Rule, ...] = ()
    targets: tuple[Target, ...] = ()

    def bucket(self, name: str) -> Bucket | None:
        return next((b for b in self.buckets if b.name == name), None)

    def queue(self, name: str) -> Queue | None:
        return next((q for q in self.queues if q.name == name), None)

    def bus(self, name: str) -> Bus | None:
        return next((b for b in self.buses if b.name == name), None)

    def rule(self, bus: str, name: str) -> Rule | None:
        return next((r for r in self.rules if r.key == (bus, name)), None)

    def targets_of(self, bus: str, rule: str) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.rule_key == (bus, rule))


@dataclass(frozen=True)
class Arns:
    """ARNs of devenv's resources in one region and account."""

    region: str
    account: str

    def queue(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account}:{name}"

    def function(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"

    def bus(self, name: str) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:event-bus/{name}"

    def rule(self, bus: str, name: str) -> str:
        path = name if bus == DEFAULT_BUS else f"{bus}/{name}"
        return f"arn:aws:events:{self.region}:{self.account}:rule/{path}"

    def target(self, target: Target) -> str:
        if target.kind is TargetKind.QUEUE:
            return self.queue(target.name)
        if target.kind is TargetKind.FUNCTION:
            return self.function(target.name)
        return target.name


def name_from_arn(arn: str) -> str:
    """The resource name at the end of an SQS or Lambda ARN (``...:name``)."""
    return arn.rsplit(":", 1)[-1]


def function_events_queue(function: str) -> str:
    """The internal queue through which EventBridge rules reach ``function``.

    ``devenv-events-to-<function>``; a name over SQS's 80 characters keeps its first part
    and ends in a hash of the whole function name, so two long names never share a queue.
    """
    name = FUNCTION_EVENTS_QUEUE_PREFIX + function
    if len(name) <= QUEUE_NAME_LIMIT:
        return name
    digest = hashlib.sha256(function.encode()).hexdigest()[:8]
    return name[:QUEUE_NAME_LIMIT - len(digest) - 1] + "-" + digest


def function_events_queue_attributes(function_timeout: float) -> dict[str, str]:
    """Attributes of a function's internal events queue: a visibility timeout of at least
    six times the function's timeout (what AWS advises for a queue feeding a function) and
    a retention of EventBridge's longest event age, 24 hours."""
    visibility = min(43200, max(30, math.ceil(6 * function_timeout)))
    return {**DEFAULT_QUEUE_ATTRIBUTES, "MessageRetentionPeriod": str(DEFAULT_EVENT_AGE),
            "VisibilityTimeout": str(visibility)}


def function_targets(config: StackConfig) -> dict[str, str]:
    """Every function some rule targets, with its internal events queue, sorted by function."""
    functions = {t.function for bus in config.event_buses.values()
                 for rule in bus.rules.values() for t in rule.targets if t.function}
    return {f: function_events_queue(f) for f in sorted(functions)}


def events_queue_policy(arns: Arns, queue: str, rule_arns: list[str]) -> str:
    """The queue policy AWS requires before EventBridge may deliver to an SQS queue:
    events.amazonaws.com may SendMessage, and only on behalf of the given rules."""
    return json.dumps({
        "Version": "2012-10-17",
        "Id": f"devenv-events-{queue}",
        "Statement": [{
            "Sid": "devenv-events",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arns.queue(queue),
            "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
        }],
    })


def desired_plane(config: StackConfig, *, account: str = DEFAULT_ACCOUNT) -> ManagedPlane:
    """The managed plane ``config`` asks for, every resource tagged with the stack's name.

    Pure. ``account`` only enters the queue policies (which name rule and queue ARNs); pass
    the emulator's own account, which ``deploy`` asks for.
    """
    stack = config.name
    arns = Arns(config.region, account)

    rules: list[Rule] = []
    targets: list[Target] = []
    senders: dict[str, list[str]] = {}  # queue -> ARNs of the rules that deliver to it
    for bus_name, bus in config.event_buses.items():
        for rule_name, rule in bus.rules.items():
            rules.append(Rule(
                bus=bus_name,
                name=rule_name,
                pattern=json.dumps(rule.pattern),
                state=RuleState.ENABLED if rule.enabled else RuleState.DISABLED,
                description=rule.description or "",
                stack=stack,
            ))
            rule_arn = arns.rule(bus_name, rule_name)
            for t in rule.targets:
                # A function is reached through its internal queue (module docstring).
                queue_name = t.queue or function_events_queue(t.function or "")
                targets.append(Target(
                    bus=bus_name,
                    rule=rule_name,
                    id=t.target_id,
                    kind=TargetKind.QUEUE,
                    name=queue_name,
                    dead_letter_queue=t.dead_letter_queue,
                    maximum_retry_attempts=t.maximum_retry_attempts,
                    maximum_event_age=t.maximum_event_age,
                ))
                for queue in (queue_name, t.dead_letter_queue):
                    if queue and rule_arn not in senders.setdefault(queue, []):
                        senders[queue].append(rule_arn)

    queues = []
    for name, q in config.queues.items():
        attributes = {
            "DelaySeconds": str(q.delay),
            "MaximumMessageSize": str(q.max_message_size),
            "MessageRetentionPeriod": str(q.message_retention),
            "ReceiveMessageWaitTimeSeconds": str(q.receive_wait_time),
            "VisibilityTimeout": str(q.visibility_timeout),
        }
        if name in senders:
            attributes["Policy"] = events_queue_policy(arns, name, senders[name])
        redrive = Redrive(q.dlq, q.max_receive_count) if q.dlq and q.max_receive_count else None
        queues.append(Queue(name=name, attributes=attributes, redrive=redrive, stack=stack))

    for function, name in function_targets(config).items():
        if name in config.queues:
            raise DeployError(
                f"queue '{name}' is the name devenv gives the internal queue feeding function "
                f"'{function}' from EventBridge",
                hint="rename that queue in devenv.yaml")
        timeout = config.functions[function].timeout if function in config.functions else 3
        attributes = function_events_queue_attributes(timeout)
        attributes["Policy"] = events_queue_policy(arns, name, senders[name])
        queues.append(Queue(name=name, attributes=attributes, stack=stack))

    return ManagedPlane(
        buckets=tuple(sorted((Bucket(name, versioning=b.versioning, stack=stack)
                              for name, b in config.buckets.items()), key=lambda b: b.name)),
        queues=tuple(sorted(queues, key=lambda q: q.name)),
        buses=tuple(sorted((Bus(name, stack=stack) for name in config.event_buses),
                           key=lambda b: b.name)),
        rules=tuple(sorted(rules, key=lambda r: r.key)),
        targets=tuple(sorted(targets, key=lambda t: (t.bus, t.rule, t.id))),
    )
