"""Pure: the actions that turn the observed managed plane into the desired one.

``plan`` does no I/O, so every rule about ordering and ownership is tested without an
emulator. Order: buckets, queues (a dead-letter queue before the queues redriving to it),
buses, rules, targets; then removals in reverse: targets, rules, buses, queues, buckets.
Ownership: a resource absent from the config is deleted only when it carries this stack's
``devenv:stack`` tag; a non-empty bucket is kept and reported, never deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

from devenv.aws.resources import (
    DEFAULT_BUS,
    JSON_QUEUE_ATTRIBUTES,
    QUEUE_ATTRIBUTES,
    Bucket,
    Bus,
    ManagedPlane,
    Queue,
    Redrive,
    ResourceKind,
    Rule,
    Target,
)
from devenv.errors import DeployError

# ---------------------------------------------------------------- actions


@dataclass(frozen=True)
class Change:
    """One attribute going from ``before`` to ``after`` ('' means unset)."""

    attribute: str
    before: str
    after: str

    def render(self) -> str:
        if self.attribute in JSON_QUEUE_ATTRIBUTES or len(self.before) + len(self.after) > 60:
            if not self.before:
                return f"{self.attribute} set"
            return f"{self.attribute} removed" if not self.after else f"{self.attribute} changed"
        return f"{self.attribute} {self.before or 'unset'} -> {self.after or 'unset'}"


@dataclass(frozen=True)
class Action:
    """One step of a deployment. ``mutates`` is False for notes that change nothing."""

    mutates: ClassVar[bool] = True

    @property
    def resource(self) -> str:
        """The resource acted on, as people name it ('queue nedlia-validation')."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class CreateBucket(Action):
    bucket: Bucket

    @property
    def resource(self) -> str:
        return f"bucket {self.bucket.name}"

    def describe(self) -> str:
        return f"+ {self.resource}" + (" (versioned)" if self.bucket.versioning else "")


@dataclass(frozen=True)
class SetBucketVersioning(Action):
    name: str
    enabled: bool

    @property
    def resource(self) -> str:
        return f"bucket {self.name}"

    def describe(self) -> str:
        return f"~ {self.resource}: versioning {'off -> on' if self.enabled else 'on -> suspended'}"


@dataclass(frozen=True)
class CreateQueue(Action):
    queue: Queue

    @property
    def resource(self) -> str:
        return f"queue {self.queue.name}"

    def describe(self) -> str:
        return f"+ {self.resource}"


@dataclass(frozen=True)
class SetQueueAttributes(Action):
    """Set the ``changes`` on an existing queue; values come from the desired ``queue``."""

    queue: Queue
    changes: tuple[Change, ...]

    @property
    def resource(self) -> str:
        return f"queue {self.queue.name}"

    def describe(self) -> str:
        return f"~ {self.resource}: " + ", ".join(c.render() for c in self.changes)


@dataclass(frozen=True)
class CreateBus(Action):
    bus: Bus

    @property
    def resource(self) -> str:
        return f"bus {self.bus.name}"

    def describe(self) -> str:
        return f"+ {self.resource}"


@dataclass(frozen=True)
class PutRule(Action):
    """Create ``rule`` (no ``changes``) or update it to match (``changes`` says what differs)."""

    rule: Rule
    changes: tuple[Change, ...] = ()

    @property
    def creates(self) -> bool:
        return not self.changes

    @property
    def resource(self) -> str:
        return f"rule {self.rule.label}"

    def describe(self) -> str:
        if self.creates:
            return f"+ {self.resource}"
        return f"~ {self.resource}: " + ", ".join(c.render() for c in self.changes)


@dataclass(frozen=True)
class PutTargets(Action):
    """Create or overwrite these targets (same id = overwrite) on one rule."""

    bus: str
    rule: str
    targets: tuple[Target, ...]

    @property
    def resource(self) -> str:
        return f"targets of rule {self.bus}/{self.rule}"

    def describe(self) -> str:
        shown = ", ".join(f"{t.id} -> {t.kind.value} {t.name}" for t in self.targets)
        return f"+ targets {self.bus}/{self.rule}: {shown}"


@dataclass(frozen=True)
class RemoveTargets(Action):
    bus: str
    rule: str
    ids: tuple[str, ...]

    @property
    def resource(self) -> str:
        return f"targets of rule {self.bus}/{self.rule}"

    def describe(self) -> str:
        return f"- targets {self.bus}/{self.rule}: {', '.join(self.ids)}"


@dataclass(frozen=True)
class DeleteRule(Action):
    bus: str
    name: str

    @property
    def resource(self) -> str:
        return f"rule {self.bus}/{self.name}"

    def describe(self) -> str:
        return f"- {self.resource}"


@dataclass(frozen=True)
class DeleteBus(Action):
    name: str

    @property
    def resource(self) -> str:
        return f"bus {self.name}"

    def describe(self) -> str:
        return f"- {self.resource}"


@dataclass(frozen=True)
class DeleteQueue(Action):
    name: str

    @property
    def resource(self) -> str:
        return f"queue {self.name}"

    def describe(self) -> str:
        return f"- {self.resource}"


@dataclass(frozen=True)
class DeleteBucket(Action):
    name: str

    @property
    def resource(self) -> str:
        return f"bucket {self.name}"

    def describe(self) -> str:
        return f"- {self.resource}"


@dataclass(frozen=True)
class Retain(Action):
    """A resource this stack made and no longer wants, kept on purpose (e.g. a bucket that
    still holds objects). Applying it does nothing; it is in the plan to be reported."""

    mutates: ClassVar[bool] = False
    kind: ResourceKind
    name: str
    reason: str

    @property
    def resource(self) -> str:
        return f"{self.kind.value} {self.name}"

    def describe(self) -> str:
        return f"! {self.resource} kept: {self.reason}"


# ---------------------------------------------------------------- semantic comparison


def canonical_json(text: str, *, policy: bool = False) -> Any:
    """JSON text as a comparable value: key order and list order ignored (EventBridge
    matches any value of a list; policy statements are a set). In a policy a one-item list
    equals its item, as IAM reads them. Text that is not JSON compares as itself."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return _canonical(value, policy)


def _canonical(value: Any, policy: bool) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _canonical(v, policy)) for k, v in value.items()))
    if isinstance(value, list):
        if policy and len(value) == 1:
            return _canonical(value[0], policy)
        return ("[]", tuple(sorted((_canonical(v, policy) for v in value), key=repr)))
    return value


def same_attribute(name: str, before: str | None, after: str | None) -> bool:
    """SQS attribute equality as SQS means it: JSON attributes parsed, numbers as numbers."""
    a, b = before or "", after or ""
    if name in JSON_QUEUE_ATTRIBUTES:
        return canonical_json(a, policy=True) == canonical_json(b, policy=True)
    if a.isdigit() and b.isdigit():
        return int(a) == int(b)
    return a == b


def _describe_redrive(redrive: Redrive | None) -> str:
    return f"{redrive.dlq} after {redrive.max_receive_count}" if redrive else ""


def queue_changes(desired: Queue, observed: Queue) -> tuple[Change, ...]:
    changes = [
        Change(name, observed.attributes.get(name, ""), desired.attributes.get(name, ""))
        for name in QUEUE_ATTRIBUTES
        if not same_attribute(name, observed.attributes.get(name), desired.attributes.get(name))
    ]
    if desired.redrive != observed.redrive:
        changes.append(Change("RedrivePolicy", _describe_redrive(observed.redrive),
                              _describe_redrive(desired.redrive)))
    return tuple(changes)


def rule_changes(desired: Rule, observed: Rule) -> tuple[Change, ...]:
    changes = []
    if canonical_json(desired.pattern) != canonical_json(observed.pattern):
        changes.append(Change("pattern", observed.pattern, desired.pattern))
    if desired.state is not observed.state:
        changes.append(Change("state", observed.state.value, desired.state.value))
    if desired.description != observed.description:
        changes.append(Change("description", observed.description, desired.description))
    return tuple(changes)


# ---------------------------------------------------------------- the plan


def plan(desired: ManagedPlane, observed: ManagedPlane, stack_name: str) -> list[Action]:
    """Actions, in a safe order, that make ``observed`` match ``desired``.

    Raises DeployError when a wanted resource already exists under another stack's tag:
    devenv never takes over what another stack made. Untagged resources of the same name
    are converged to the config but stay untagged, so devenv never deletes them later.
    """
    _check_ownership(desired, observed, stack_name)
    return [
        *_bucket_actions(desired, observed),
        *_queue_actions(desired, observed),
        *_bus_actions(desired, observed),
        *_rule_actions(desired, observed),
        *_target_actions(desired, observed),
        *_removals(desired, observed, stack_name),
    ]


def _check_ownership(desired: ManagedPlane, observed: ManagedPlane, stack_name: str) -> None:
    clashes = []
    pairs: list[tuple[str, Any]] = [
        *((f"bucket {b.name}", observed.bucket(b.name)) for b in desired.buckets),
        *((f"queue {q.name}", observed.queue(q.name)) for q in desired.queues),
        *((f"bus {b.name}", observed.bus(b.name)) for b in desired.buses if b.name != DEFAULT_BUS),
        *((f"rule {r.label}", observed.rule(*r.key)) for r in desired.rules),
    ]
    for label, seen in pairs:
        if seen is not None and seen.stack not in (None, stack_name):
            clashes.append(f"{label} belongs to stack '{seen.stack}'")
    if clashes:
        raise DeployError(
            f"{len(clashes)} resource(s) in the emulator belong to another devenv stack",
            details=clashes,
            hint="give this stack another name, or bring the other stack down first",
        )


def _bucket_actions(desired: ManagedPlane, observed: ManagedPlane) -> Iterable[Action]:
    for bucket in desired.buckets:
        seen = observed.bucket(bucket.name)
        if seen is None:
            yield CreateBucket(bucket)
        elif seen.versioning != bucket.versioning:
            yield SetBucketVersioning(bucket.name, bucket.versioning)


def dlq_first(queues: Iterable[Queue]) -> list[Queue]:
    """Queues ordered so a queue's dead-letter queue comes before it (names break ties)."""
    by_name = {q.name: q for q in queues}
    ordered: list[Queue] = []
    seen: set[str] = set()

    def visit(queue: Queue) -> None:
        if queue.name in seen:
            return
        seen.add(queue.name)
        if queue.redrive and queue.redrive.dlq in by_name:
            visit(by_name[queue.redrive.dlq])
        ordered.append(queue)

    for name in sorted(by_name):
        visit(by_name[name])
    return ordered


def _queue_actions(desired: ManagedPlane, observed: ManagedPlane) -> Iterable[Action]:
    for queue in dlq_first(desired.queues):
        seen = observed.queue(queue.name)
        if seen is None:
            yield CreateQueue(queue)
        elif changes := queue_changes(queue, seen):
            yield SetQueueAttributes(queue, changes)


def _bus_actions(desired: ManagedPlane, observed: ManagedPlane) -> Iterable[Action]:
    for bus in desired.buses:
        if bus.name != DEFAULT_BUS and observed.bus(bus.name) is None:
            yield CreateBus(bus)


def _rule_actions(desired: ManagedPlane, observed: ManagedPlane) -> Iterable[Action]:
    for rule in desired.rules:
        seen = observed.rule(*rule.key)
        if seen is None:
            yield PutRule(rule)
        elif changes := rule_changes(rule, seen):
            yield PutRule(rule, changes)


def _target_actions(desired: ManagedPlane, observed: ManagedPlane) -> Iterable[Action]:
    for rule in desired.rules:
        current = {t.id: t for t in observed.targets_of(*rule.key)}
        wanted = tuple(t for t in desired.targets_of(*rule.key) if current.get(t.id) != t)
        if wanted:
            yield PutTargets(rule.bus, rule.name, wanted)


def _removals(desired: ManagedPlane, observed: ManagedPlane, stack: str) -> Iterable[Action]:
    def ours(resource: Bucket | Queue | Bus | Rule) -> bool:
        return resource.stack == stack

    # Targets: stale ones on rules we keep, all of them on rules we delete.
    doomed_rules = [r for r in observed.rules if ours(r) and desired.rule(*r.key) is None]
    for rule in desired.rules:
        wanted = {t.id for t in desired.targets_of(*rule.key)}
        stale = tuple(t.id for t in observed.targets_of(*rule.key) if t.id not in wanted)
        if stale:
            yield RemoveTargets(rule.bus, rule.name, stale)
    for rule in doomed_rules:
        ids = tuple(t.id for t in observed.targets_of(*rule.key))
        if ids:
            yield RemoveTargets(rule.bus, rule.name, ids)
    for rule in doomed_rules:
        yield DeleteRule(rule.bus, rule.name)

    doomed_keys = {r.key for r in doomed_rules}
    for bus in observed.buses:
        if not ours(bus) or bus.name == DEFAULT_BUS or desired.bus(bus.name) is not None:
            continue
        foreign = sorted(r.name for r in observed.rules
                         if r.bus == bus.name and r.key not in doomed_keys)
        if foreign:
            yield Retain(ResourceKind.BUS, bus.name,
                         f"it holds rules devenv did not create: {', '.join(foreign)}")
        else:
            yield DeleteBus(bus.name)

    doomed_queues = [q for q in observed.queues if ours(q) and desired.queue(q.name) is None]
    for queue in reversed(dlq_first(doomed_queues)):
        yield DeleteQueue(queue.name)

    for bucket in observed.buckets:
        if ours(bucket) and desired.bucket(bucket.name) is None:
            if bucket.empty:
                yield DeleteBucket(bucket.name)
            else:
                yield Retain(ResourceKind.BUCKET, bucket.name, "it still holds objects")

