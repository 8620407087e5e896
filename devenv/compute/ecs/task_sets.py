"""Blue/green deployments of a CODE_DEPLOY service: its task sets, each behind one of the
service's two target groups, and the CodeDeploy deployments that move traffic between them.

The scheduler gives each CODE_DEPLOY service a ``BlueGreen``: every tick it keeps each task set
at the service's desired count (a removed one at none), tells the deployment in progress what
happened (the replacement ready or unhealthy, time passed) and carries out what the pure state
machine (``bluegreen.py``) decides: start or remove a task set, set the production listener's
weights and the test listener's target on the load balancer (``Traffic``), invoke a hook
(``HookInvoker``: a real Lambda invoke through the Invoke API). A hook reports through the
CodeDeploy API (``compute/ecs_aws/codedeploy.py``), which calls ``report``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import string
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Protocol

from devenv.compute.ecs.bluegreen import (BlueGreenDeployment, Begin, CreateGreen, Effect, Event, Finished,
                                          GreenReady, GreenUnhealthy, HookReported, InvokeHook, Plan, Promote,
                                          RemoveBlue, RemoveGreen, RouteTest, SetWeights, Status, Tick,
                                          traffic_schedule)
from devenv.compute.ecs.rollout import LIVE, LastStatus, TaskView, plan_rollout
from devenv.config.model import BlueGreenConfig

if TYPE_CHECKING:
    from devenv.compute.ecs.scheduler import Deployment, Service, Task

log = logging.getLogger("devenv.ecs")

DEPLOYMENTS_KEPT = 20
# Why a task of the replacement task set stopped, when it counts as unhealthy.
UNHEALTHY_STOP_CODES = ("EssentialContainerExited", "TaskFailedToStart")


def alternate_group(service: str) -> str:
    """The name of a CODE_DEPLOY service's second target group (the first is named after it)."""
    return f"{service}-2"


class Traffic(Protocol):
    """The load balancer's side of a CODE_DEPLOY service (``compute/alb``'s ``ServiceTraffic``)."""

    def set_weights(self, weights: Mapping[str, int]) -> None:
        """The production listener's forward: target group name -> weight."""

    def route_test(self, group: str) -> None:
        """The test listener forwards to ``group`` only."""

    def weights(self) -> dict[str, int]:
        """The production listener's weights now."""


class HookInvoker(Protocol):
    async def invoke(self, function: str, payload: dict) -> str | None:
        """Runs ``function`` with ``payload``; None when it returned, else why it failed (it
        raised, timed out, does not exist, the Lambda endpoint is unreachable)."""


def new_deployment_id() -> str:
    """A CodeDeploy deployment id: ``d-`` and nine upper-case letters and digits."""
    return "d-" + "".join(random.choices(string.ascii_uppercase + string.digits, k=9))


@dataclass(eq=False)
class TaskSet:
    id: str
    revision: int
    group: str  # its target group's name
    status: str  # PRIMARY, ACTIVE or DRAINING (being removed)
    created: float
    updated: float
    external_id: str | None = None  # the CodeDeploy deployment that created it (or the first ECS deployment)

    def set_status(self, status: str, now: float) -> None:
        self.status = status
        self.updated = now


@dataclass(eq=False)
class CodeDeployment:
    """One CodeDeploy deployment: its machine, the task sets it moves traffic between, and the
    ECS deployment it becomes once the replacement is primary."""

    id: str
    revision: int
    reason: str
    config_name: str
    machine: BlueGreenDeployment
    original: TaskSet
    ecs: "Deployment"
    created: float
    replacement: TaskSet | None = None

    @property
    def status(self) -> Status:
        return self.machine.status


class BlueGreenBusy(Exception):
    """A deployment is already in progress (CodeDeploy's DeploymentLimitExceededException)."""


def plan_of(config: BlueGreenConfig, test_listener: bool) -> Plan:
    kind, percentage, interval = config.routing()
    scale = config.time_scale
    return Plan(shifts=traffic_schedule(kind, percentage, interval, scale),
                hooks=tuple(config.hooks.by_event().items()), hook_timeout=config.hook_timeout * scale,
                termination_wait=config.termination_wait * 60 * scale, test_listener=test_listener,
                rollback_on_failure=config.auto_rollback.on_failure,
                rollback_on_unhealthy=config.auto_rollback.on_unhealthy)


class BlueGreen:
    """The task sets and CodeDeploy deployments of one service."""

    def __init__(self, service: "Service", config: BlueGreenConfig, hooks: HookInvoker | None):
        self.service = service
        self.config = config
        self.hooks = hooks
        self.sets: list[TaskSet] = []
        self.deployments: list[CodeDeployment] = []

    # -- looking

    @property
    def name(self) -> str:
        return self.service.spec.name

    @property
    def traffic(self) -> Traffic | None:
        balancer = self.service.scheduler.load_balancer
        return None if balancer is None else balancer.traffic(self.name)

    @property
    def primary(self) -> TaskSet | None:
        return next((s for s in self.sets if s.status == "PRIMARY"), None)

    @property
    def current(self) -> CodeDeployment | None:
        """The deployment in progress, if any."""
        last = self.deployments[-1] if self.deployments else None
        return last if last is not None and not last.machine.done else None

    def deployment(self, deployment_id: str) -> CodeDeployment | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    def task_set(self, task_set_id: str | None) -> TaskSet | None:
        return next((s for s in self.sets if s.id == task_set_id), None)

    def group_name(self, task: "Task") -> str | None:
        found = self.task_set(task.task_set)
        return found.group if found is not None else None

    def annotate(self, data: dict, task: "Task") -> None:
        """Adds to a task's control-API view its task set's role (see ``role``) and the share of
        production traffic that task set gets."""
        found = self.task_set(task.task_set)
        data["taskSet"] = "" if found is None else self.role(found)
        data["traffic"] = None if found is None else self.traffic_percent(found)

    def traffic_percent(self, task_set: TaskSet) -> int:
        """The share of production traffic ``task_set``'s target group gets now."""
        traffic = self.traffic
        if traffic is None:
            return 100 if task_set.status == "PRIMARY" else 0
        weights = traffic.weights()
        total = sum(weights.values())
        return round(100 * weights.get(task_set.group, 0) / total) if total else 0

    # -- deploying

    def deploy(self, revision: int, reason: str, now: float | None = None) -> "Deployment":
        """Starts a blue/green deployment of ``revision``; the ECS deployment it will become."""
        from devenv.compute.ecs.scheduler import Deployment

        now = time.time() if now is None else now
        if self.current is not None:
            raise BlueGreenBusy(f"deployment {self.current.id} of {self.name} is still in progress")
        original = self.primary
        if original is None:
            raise BlueGreenBusy(f"{self.name} has no primary task set yet (its first deployment is starting)")
        for leftover in self.sets:  # a replacement a failed deployment left running (auto_rollback.on_failure off)
            if leftover is not original and leftover.status != "DRAINING":
                leftover.set_status("DRAINING", now)
        machine = BlueGreenDeployment(plan_of(self.config, self.traffic is not None and self._has_test_listener()),
                                      new_id=lambda: str(uuid.uuid4()))
        deployment = CodeDeployment(new_deployment_id(), revision, reason, self.config.config_name, machine,
                                    original, Deployment(revision, self.service.desired, reason), now)
        self.deployments.append(deployment)
        del self.deployments[:-DEPLOYMENTS_KEPT]
        self.service.event(f"CodeDeploy deployment {deployment.id} started: revision {revision} "
                           f"({self.config.config_name}; {reason})")
        self._feed(deployment, Begin(now))
        return deployment.ecs

    def _has_test_listener(self) -> bool:
        return self.config.test_listener_port is not None

    def report(self, deployment_id: str, execution_id: str, status: str, now: float | None = None) -> None:
        """PutLifecycleEventHookExecutionStatus. KeyError: no such deployment or execution."""
        deployment = self.deployment(deployment_id)
        if deployment is None:
            raise KeyError(deployment_id)
        if not any(step.execution_id == execution_id for step in deployment.machine.steps.values()):
            raise KeyError(execution_id)
        if status in ("Pending", "InProgress"):
            return
        self._feed(deployment, HookReported(time.time() if now is None else now, execution_id,
                                            status in ("Succeeded", "Skipped"), f"the hook reported {status}"))

    # -- every tick

    async def tick(self, now: float) -> None:
        service = self.service
        if not self.sets:
            if not service.deployments:
                return
            self.sets.append(TaskSet(self._new_set_id(), service.primary.revision, self.name, "PRIMARY", now, now,
                                     service.primary.id))
        for task_set in list(self.sets):
            await self._reconcile(task_set, now)
        primary = self.primary
        deployment = service.primary
        if primary is not None and deployment.state == "IN_PROGRESS" and self.steady(primary):
            service.complete(deployment)
        current = self.current
        if current is not None:
            replacement = current.replacement
            if replacement is not None:
                why = self._unhealthy(replacement, current.created)
                if why is not None:
                    self._feed(current, GreenUnhealthy(now, why))
                elif self.steady(replacement):
                    self._feed(current, GreenReady(now))
            self._feed(current, Tick(now))

    def _tasks(self, task_set: TaskSet) -> list["Task"]:
        return [t for t in self.service.tasks if t.task_set == task_set.id]

    async def _reconcile(self, task_set: TaskSet, now: float) -> None:
        service = self.service
        tasks = self._tasks(task_set)
        desired = 0 if task_set.status == "DRAINING" else service.desired
        views = [TaskView(t.id, t.revision, t.status if t.desired_status == "RUNNING" else LastStatus.STOPPING,
                          service.task_healthy(t), t.created, t.capacity_provider) for t in tasks]
        plan = plan_rollout(desired=desired, primary=task_set.revision, tasks=views, minimum_healthy_percent=100,
                            maximum_percent=200)
        for task_id in plan.stop:
            task = next(t for t in tasks if t.id == task_id)
            service.stop_task(task, f"Scaling activity initiated by (task set {task_set.id})",
                              "ServiceSchedulerInitiated")
        for _ in range(plan.start):
            await service.start_task(task_set.revision, task_set=task_set.id)
        if task_set.status == "DRAINING" and not any(t.status is not LastStatus.STOPPED for t in tasks):
            self.sets.remove(task_set)

    def steady(self, task_set: TaskSet) -> bool:
        tasks = [t for t in self._tasks(task_set) if t.status in LIVE and t.desired_status == "RUNNING"]
        return len(tasks) == self.service.desired and all(self.service.task_healthy(t) for t in tasks)

    def _unhealthy(self, task_set: TaskSet, since: float) -> str | None:
        """Why a task of ``task_set`` failed since ``since`` (crashed, failed its health checks), if one did."""
        for task in [*self.service.tasks, *self.service.stopped]:
            if task.task_set != task_set.id or task.desired_status == "RUNNING" or (task.stopping or 0) < since:
                continue
            reason = task.stopped_reason or ""
            if task.stop_code in UNHEALTHY_STOP_CODES or "health checks" in reason:
                return f"task {task.id} stopped: {reason}"
        return None

    def _new_set_id(self) -> str:
        return f"ecs-svc/{uuid.uuid4().int % 10**19:019d}"

    # -- effects

    def _feed(self, deployment: CodeDeployment, event: Event) -> None:
        for effect in deployment.machine.step(event):
            self._apply(deployment, effect, getattr(event, "now", time.time()))

    def _apply(self, deployment: CodeDeployment, effect: Effect, now: float) -> None:
        service = self.service
        if isinstance(effect, CreateGreen):
            group = alternate_group(self.name) if deployment.original.group == self.name else self.name
            deployment.replacement = TaskSet(self._new_set_id(), deployment.revision, group, "ACTIVE", now, now,
                                             deployment.id)
            self.sets.append(deployment.replacement)
            service.event(f"CodeDeploy {deployment.id}: replacement task set {deployment.replacement.id} "
                          f"(revision {deployment.revision}) behind target group {group}")
        elif isinstance(effect, RouteTest):
            traffic = self.traffic
            target = deployment.replacement if effect.to_green and deployment.replacement else deployment.original
            if traffic is not None:
                traffic.route_test(target.group)
        elif isinstance(effect, SetWeights):
            traffic = self.traffic
            replacement = deployment.replacement
            if traffic is not None:
                weights = {deployment.original.group: 100 - effect.green}
                if replacement is not None:
                    weights[replacement.group] = effect.green
                traffic.set_weights(weights)
            service.event(f"CodeDeploy {deployment.id}: {effect.green}% of production traffic on the replacement")
        elif isinstance(effect, InvokeHook):
            payload = {"DeploymentId": deployment.id, "LifecycleEventHookExecutionId": effect.execution_id}
            service.event(f"CodeDeploy {deployment.id}: {effect.event} hook {effect.function} invoked")
            service.scheduler.spawn(self._invoke(deployment, effect, payload))
        elif isinstance(effect, RemoveGreen):
            if deployment.replacement is not None:
                deployment.replacement.set_status("DRAINING", now)
        elif isinstance(effect, Promote):
            replacement = deployment.replacement
            assert replacement is not None
            deployment.original.set_status("ACTIVE", now)
            replacement.set_status("PRIMARY", now)
            service.deployments.append(deployment.ecs)
            service.complete(deployment.ecs)
        elif isinstance(effect, RemoveBlue):
            deployment.original.set_status("DRAINING", now)
        elif isinstance(effect, Finished):
            if effect.status is Status.SUCCEEDED:
                service.event(f"CodeDeploy deployment {deployment.id} succeeded: revision {deployment.revision}")
            else:
                deployment.ecs.state = "FAILED"
                deployment.ecs.reason = effect.message
                service.event(f"CodeDeploy deployment {deployment.id} failed"
                              f"{' and rolled back' if effect.rolled_back else ''}: {effect.message}")

    async def _invoke(self, deployment: CodeDeployment, effect: InvokeHook, payload: dict) -> None:
        if self.hooks is None:
            why: str | None = "no Lambda endpoint to invoke hooks with"
        else:
            try:
                why = await self.hooks.invoke(effect.function, payload)
            except Exception as exc:  # the invoker's own bug must fail the hook, not hang the deployment
                log.exception("invoking hook %s failed", effect.function)
                why = str(exc) or type(exc).__name__
        if why is not None:
            self._feed(deployment, HookReported(time.time(), effect.execution_id, False, why))

    # -- views

    def to_json(self) -> dict:
        current = self.current or (self.deployments[-1] if self.deployments else None)
        return {
            "deploymentConfig": self.config.config_name,
            "taskSets": [{"id": s.id, "revision": s.revision, "targetGroup": s.group, "status": s.status,
                          "traffic": self.traffic_percent(s), "role": self.role(s)} for s in self.sets],
            "deployment": current and {
                "id": current.id, "status": current.status.value, "revision": current.revision,
                "lifecycleEvent": current.machine.current.value if current.machine.current else None,
                "greenPercent": current.machine.green_percent, "message": current.machine.message,
                "rolledBack": current.machine.rolled_back},
        }

    def role(self, task_set: TaskSet) -> str:
        """blue: the primary task set, or the original one during a deployment; green: the
        replacement; draining: one being removed."""
        current = self.current
        if current is not None and current.replacement is task_set:
            return "green"
        if task_set.status == "PRIMARY" or (current is not None and current.original is task_set):
            return "blue"
        return "green" if task_set.status != "DRAINING" else "draining"


class LambdaHooks:
    """Hooks invoked through the stack's Lambda Invoke API (RequestResponse), as CodeDeploy
    invokes them; a function error, a timeout or an unreachable endpoint is the hook's failure."""

    def __init__(self, endpoint: str, timeout: float = 905.0):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout

    async def invoke(self, function: str, payload: dict) -> str | None:
        from devenv.errors import EndpointError
        from devenv.runtime.http import request

        url = f"{self.endpoint}/2015-03-31/functions/{function}/invocations"
        try:
            reply = await asyncio.to_thread(request, "POST", url, json=payload, timeout=self.timeout)
        except EndpointError as exc:
            return str(exc)
        if reply.status >= 300:
            return f"Lambda answered {reply.status}: {reply.text()[:300]}"
        if reply.header("X-Amz-Function-Error"):
            try:
                body = reply.json() or {}
            except Exception:
                body = {}
            message = body.get("errorMessage") if isinstance(body, dict) else None
            return f"{function} raised {body.get('errorType', 'an error') if isinstance(body, dict) else 'an error'}" \
                   + (f": {message}" if message else "")
        return None
