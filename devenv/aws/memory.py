"""An in-memory ManagedPlaneApi: the emulator's behaviour reduced to a ManagedPlane value.

For unit tests of anything that deploys (here and in the stack): apply mutates the plane
the way the emulator would, and every applied action is recorded.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Collection

from devenv.aws.plan import (
    Action,
    CreateBucket,
    CreateBus,
    CreateQueue,
    DeleteBucket,
    DeleteBus,
    DeleteQueue,
    DeleteRule,
    PutRule,
    PutTargets,
    RemoveTargets,
    Retain,
    SetBucketVersioning,
    SetQueueAttributes,
)
from devenv.aws.resources import DEFAULT_ACCOUNT, DEFAULT_BUS, Bus, ManagedPlane
from devenv.errors import DeployError


class InMemoryPlaneApi:
    """Holds ``plane``; ``fail_on`` lists resources ('queue x') whose actions fail."""

    def __init__(self, plane: ManagedPlane = ManagedPlane(), *, account: str = DEFAULT_ACCOUNT,
                 fail_on: Collection[str] = ()):
        self.plane = plane if plane.bus(DEFAULT_BUS) else replace(
            plane, buses=tuple(sorted((*plane.buses, Bus(DEFAULT_BUS)), key=lambda b: b.name)))
        self._account = account
        self.fail_on = set(fail_on)
        self.applied: list[Action] = []
        self.observed = 0

    def account(self) -> str:
        return self._account

    def observe(self) -> ManagedPlane:
        self.observed += 1
        return self.plane

    def apply(self, action: Action) -> None:
        if action.resource in self.fail_on:
            raise DeployError(f"{action.resource}: '{action.describe()}' failed: InjectedFailure")
        p = self.plane
        match action:
            case CreateBucket(bucket=bucket):
                p = replace(p, buckets=_put(p.buckets, bucket, lambda b: b.name))
            case SetBucketVersioning(name=name, enabled=enabled):
                p = replace(p, buckets=_put(p.buckets, replace(p.bucket(name), versioning=enabled),
                                            lambda b: b.name))
            case CreateQueue(queue=queue):
                p = replace(p, queues=_put(p.queues, queue, lambda q: q.name))
            case SetQueueAttributes(queue=queue, changes=changes):
                seen = p.queue(queue.name)
                attributes = dict(seen.attributes)
                redrive = seen.redrive
                for change in changes:
                    if change.attribute == "RedrivePolicy":
                        redrive = queue.redrive
                    elif change.after:
                        attributes[change.attribute] = queue.attributes[change.attribute]
                    else:
                        attributes.pop(change.attribute, None)
                p = replace(p, queues=_put(p.queues, replace(seen, attributes=attributes,
                                                             redrive=redrive), lambda q: q.name))
            case CreateBus(bus=bus):
                p = replace(p, buses=_put(p.buses, bus, lambda b: b.name))
            case PutRule(rule=rule):
                seen = p.rule(*rule.key)
                kept = replace(rule, stack=seen.stack) if seen else rule  # tags survive updates
                p = replace(p, rules=_put(p.rules, kept, lambda r: r.key))
            case PutTargets(targets=targets):
                for target in targets:
                    p = replace(p, targets=_put(p.targets, target, lambda t: (t.bus, t.rule, t.id)))
            case RemoveTargets(bus=bus, rule=rule, ids=ids):
                p = replace(p, targets=tuple(t for t in p.targets
                                             if not (t.rule_key == (bus, rule) and t.id in ids)))
            case DeleteRule(bus=bus, name=name):
                p = replace(p, rules=tuple(r for r in p.rules if r.key != (bus, name)))
            case DeleteBus(name=name):
                p = replace(p, buses=tuple(b for b in p.buses if b.name != name))
            case DeleteQueue(name=name):
                p = replace(p, queues=tuple(q for q in p.queues if q.name != name))
            case DeleteBucket(name=name):
                p = replace(p, buckets=tuple(b for b in p.buckets if b.name != name))
            case Retain():
                pass
            case _:
                raise TypeError(f"no way to apply {type(action).__name__}")
        self.plane = p
        self.applied.append(action)


def _put(items: tuple, item: object, key) -> tuple:
    """``items`` with ``item`` added or replacing the one of the same key, kept sorted."""
    kept = [i for i in items if key(i) != key(item)]
    return tuple(sorted([*kept, item], key=key))
