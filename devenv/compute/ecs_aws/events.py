"""ECS's events on EventBridge, as AWS sends them to the default bus (source ``aws.ecs``):
"ECS Task State Change" when a task's last or desired status changes, "ECS Service Action"
(SERVICE_STEADY_STATE) and "ECS Deployment State Change" (SERVICE_DEPLOYMENT_IN_PROGRESS,
_COMPLETED, _FAILED), so a user's rule on them fires.

``EcsEventWatcher.changes`` compares the scheduler's state with what it saw last and returns
the PutEvents entries (pure but for that memory); the ecs process puts them on the bus."""

from __future__ import annotations

import datetime
import json
import time

from devenv.compute.ecs.capacity import SPOT_STOP_CODE
from devenv.compute.ecs.rollout import LastStatus
from devenv.compute.ecs.scheduler import EventKind, Scheduler, Service, Task
from devenv.compute.ecs_aws.arns import Names
from devenv.compute.ecs_aws.ecs import task_shape

SOURCE = "aws.ecs"
BUS = "default"
DEPLOYMENT_EVENTS = {"IN_PROGRESS": ("INFO", "SERVICE_DEPLOYMENT_IN_PROGRESS", "in progress"),
                     "COMPLETED": ("INFO", "SERVICE_DEPLOYMENT_COMPLETED", "completed"),
                     "FAILED": ("ERROR", "SERVICE_DEPLOYMENT_FAILED", "failed")}


def iso(moment: float) -> str:
    """An event's time as ECS writes it: UTC, milliseconds, Z."""
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _entry(detail_type: str, resources: list[str], detail: dict) -> dict:
    return {"Source": SOURCE, "DetailType": detail_type, "Resources": resources, "Detail": json.dumps(detail),
            "EventBusName": BUS}


def task_state_change(names: Names, service: Service, task: Task, now: float) -> dict:
    """The task as DescribeTasks shows it, times in ECS's event format, plus ``updatedAt``."""
    detail = {key: iso(value) if key.endswith("At") and isinstance(value, (int, float)) else value
              for key, value in task_shape(names, service, task).items()}
    detail["updatedAt"] = iso(now)
    for attachment in detail.get("attachments", []):
        attachment["type"] = "eni"  # as the event spells it
    return _entry("ECS Task State Change", [names.task_arn(task.id)], detail)


def service_action(names: Names, service: Service, event_name: str, at: float) -> dict:
    return _entry("ECS Service Action", [names.service_arn(service.spec.name)],
                  {"eventType": "INFO", "eventName": event_name, "clusterArn": names.cluster_arn,
                   "createdAt": iso(at)})


def deployment_state_change(names: Names, service: Service, deployment_id: str, state: str, at: float) -> dict:
    event_type, name, wording = DEPLOYMENT_EVENTS[state]
    reason = (f"ECS deployment circuit breaker: task failed to start." if state == "FAILED"
              else f"ECS deployment {deployment_id} {wording}.")
    return _entry("ECS Deployment State Change", [names.service_arn(service.spec.name)],
                  {"eventType": event_type, "eventName": name, "deploymentId": deployment_id,
                   "updatedAt": iso(at), "reason": reason})


def spot_notice_missed(before: tuple[str, str] | None, task: Task) -> bool:
    """A Spot interruption's notice is the change to desired STOPPED while the task still
    RUNS; the task may have moved on (draining) before the watcher's next look."""
    return (before == ("RUNNING", "RUNNING") and task.stop_code == SPOT_STOP_CODE
            and task.status is not LastStatus.RUNNING)


def spot_notice(names: Names, service: Service, task: Task) -> dict:
    """The interruption warning as AWS sends it: desiredStatus STOPPED, lastStatus RUNNING,
    stopCode SpotInterruption, at the moment of the notice."""
    entry = task_state_change(names, service, task, task.stopping or time.time())
    detail = json.loads(entry["Detail"])
    detail["lastStatus"] = "RUNNING"
    for container in detail.get("containers", []):
        container["lastStatus"] = "RUNNING"
    for key in ("stoppedAt", "executionStoppedAt"):
        detail.pop(key, None)
    return {**entry, "Detail": json.dumps(detail)}


class EcsEventWatcher:
    """What changed since the last look, as PutEvents entries."""

    def __init__(self, names: Names):
        self.names = names
        self._tasks: dict[str, tuple[str, str]] = {}
        self._deployments: dict[str, str] = {}
        self._seen_events: set[str] = set()
        self._first = True

    def changes(self, scheduler: Scheduler, now: float) -> list[dict]:
        entries: list[dict] = []
        tasks: dict[str, tuple[str, str]] = {}
        deployments: dict[str, str] = {}
        events: set[str] = set()
        for service in scheduler.services.values():
            for deployment in service.deployments:
                state = {"STOPPED": "IN_PROGRESS"}.get(deployment.state, deployment.state)
                deployments[deployment.id] = state
                if self._deployments.get(deployment.id) != state:
                    entries.append(deployment_state_change(self.names, service, deployment.id, state, now))
            for task in list(service.tasks) + list(service.stopped):
                key = (task.status.value, task.desired_status)
                tasks[task.id] = key
                before = self._tasks.get(task.id)
                if before != key and spot_notice_missed(before, task):
                    entries.append(spot_notice(self.names, service, task))
                if before != key:
                    entries.append(task_state_change(self.names, service, task, now))
            for event in service.history:
                events.add(event.id)
                if event.kind is EventKind.STEADY_STATE and event.id not in self._seen_events:
                    entries.append(service_action(self.names, service, "SERVICE_STEADY_STATE", event.at))
        self._tasks, self._deployments, self._seen_events = tasks, deployments, events
        return entries
