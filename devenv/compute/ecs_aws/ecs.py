"""The ECS API (JSON 1.1, ``AmazonEC2ContainerServiceV20141113.*``) over the scheduler's own
state: the shapes are pure functions of a service, its tasks and deployments (so `devenv ps`,
`status` and this API read one state), the operations act through the same scheduler calls
`devenv deploy` and `devenv scale` make.

One cluster, named after the stack; each service's task definition family is the service's
name and its revisions are the service's revisions (one per deployed code snapshot)."""

from __future__ import annotations

import uuid
from typing import Any, Awaitable, Callable

from devenv.compute.ecs.rollout import LastStatus
from devenv.compute.ecs.scheduler import EventKind, Scheduler, Service, ServiceEvent, Task
from devenv.compute.ecs_aws.arns import Names
from devenv.compute.ecs_aws.wire import ApiError

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
PLATFORM_VERSION = "1.4.0"
CONTAINER_STATUS = {LastStatus.PROVISIONING: "PENDING", LastStatus.PENDING: "PENDING",
                    LastStatus.RUNNING: "RUNNING", LastStatus.DEACTIVATING: "RUNNING",
                    LastStatus.STOPPING: "RUNNING", LastStatus.DEPROVISIONING: "STOPPED",
                    LastStatus.STOPPED: "STOPPED"}
LIVE = (LastStatus.PROVISIONING, LastStatus.PENDING, LastStatus.RUNNING)


def _seconds(value: float) -> int:
    """A duration in whole seconds, as the task definition's integer fields hold it (devenv's
    config allows fractions for fast local checks: rounded up)."""
    whole = int(value)
    return whole if whole == value else whole + 1


# ------------------------------------------------------------------ shapes (pure)


def cluster_shape(names: Names, scheduler: Scheduler) -> dict:
    tasks = [t for s in scheduler.services.values() for t in s.tasks]
    return {
        "clusterArn": names.cluster_arn, "clusterName": names.cluster, "status": "ACTIVE",
        "registeredContainerInstancesCount": 0,
        "runningTasksCount": sum(1 for t in tasks if t.status is LastStatus.RUNNING),
        "pendingTasksCount": sum(1 for t in tasks if t.status in (LastStatus.PROVISIONING, LastStatus.PENDING)),
        "activeServicesCount": len(scheduler.services), "statistics": [], "tags": [],
        "settings": [{"name": "containerInsights", "value": "enabled" if scheduler.metrics else "disabled"}],
        "capacityProviders": ["FARGATE", "FARGATE_SPOT"], "defaultCapacityProviderStrategy": [],
    }


def deployments_shape(names: Names, service: Service) -> list[dict]:
    """The primary deployment first, then each older one that still has live tasks (ACTIVE);
    a revision's tasks belong to its newest deployment (a rollback takes the old tasks back)."""
    live = [t for t in service.tasks if t.status is not LastStatus.STOPPED]
    shown, seen = [], set()
    for index, deployment in enumerate(reversed(service.deployments)):
        if deployment.revision in seen:
            continue
        seen.add(deployment.revision)
        mine = [t for t in live if t.revision == deployment.revision]
        if index and not mine:
            continue
        state = {"STOPPED": "IN_PROGRESS"}.get(deployment.state, deployment.state)
        shown.append({
            "id": deployment.id, "status": "PRIMARY" if index == 0 else "ACTIVE",
            "taskDefinition": names.task_definition_arn(service.spec.name, deployment.revision),
            "desiredCount": service.desired if index == 0 else 0,
            "pendingCount": sum(1 for t in mine if t.status in (LastStatus.PROVISIONING, LastStatus.PENDING)),
            "runningCount": sum(1 for t in mine if t.status is LastStatus.RUNNING),
            "failedTasks": deployment.failed_tasks, "createdAt": deployment.created,
            "updatedAt": deployment.updated, "platformVersion": PLATFORM_VERSION,
            "platformFamily": "Linux", "rolloutState": state, "rolloutStateReason": rollout_reason(deployment.state,
                                                                                                  deployment.reason),
            **capacity_shape(service),
        })
    return shown


def capacity_shape(service: Service) -> dict:
    """Where a service's tasks run, as DescribeServices shows it: its capacity provider
    strategy, or (none given) the launch type FARGATE; AWS shows one or the other."""
    if not service.strategy:
        return {"launchType": "FARGATE"}
    return {"capacityProviderStrategy": [{"capacityProvider": item.capacity_provider, "weight": item.weight,
                                          "base": item.base} for item in service.strategy]}


def rollout_reason(state: str, reason: str) -> str:
    """rolloutStateReason as ECS words it."""
    if state == "COMPLETED":
        return "ECS deployment completed."
    if state == "FAILED":
        return f"ECS deployment circuit breaker: {reason}"
    return "ECS deployment in progress."


EVENT_WORDING = {
    EventKind.STARTED_TASKS: "{head} has started {count} tasks: {tasks}.",
    EventKind.STOPPED_TASKS: "{head} has stopped {count} running tasks: {tasks}.",
    EventKind.STEADY_STATE: "{head} has reached a steady state.",
    EventKind.DEPLOYMENT_COMPLETED: "{head} (deployment {deployment}) deployment completed.",
    EventKind.DEPLOYMENT_FAILED: "{head} (deployment {deployment}) deployment failed: tasks failed to start.",
    EventKind.ROLLING_BACK: "{head} rolling back to deployment {deployment}.",
    EventKind.UNHEALTHY_CONTAINER: "{head} {tasks} failed container health checks.",
    EventKind.REGISTERED_TARGETS: "{head} registered {count} targets in {target_group}",
    EventKind.DRAINING: "{head} has begun draining connections on {count} tasks.",
    EventKind.DEREGISTERED_TARGETS: "{head} deregistered {count} targets in {target_group}",
}


def event_message(names: Names, service: str, event: ServiceEvent) -> str:
    """A service event as ECS words it."""
    return EVENT_WORDING[event.kind].format(
        head=f"(service {service})", count=len(event.tasks), tasks=" ".join(f"(task {t})" for t in event.tasks),
        deployment=event.deployment, target_group=f"(target-group {names.target_group_arn(service)})")


def service_shape(names: Names, service: Service) -> dict:
    config = service.spec.config
    live = [t for t in service.tasks if t.status is not LastStatus.STOPPED]
    shape: dict[str, Any] = {
        "serviceArn": names.service_arn(service.spec.name), "serviceName": service.spec.name,
        "clusterArn": names.cluster_arn, "loadBalancers": [], "serviceRegistries": [], "status": "ACTIVE",
        "desiredCount": service.desired,
        "runningCount": sum(1 for t in live if t.status is LastStatus.RUNNING),
        "pendingCount": sum(1 for t in live if t.status in (LastStatus.PROVISIONING, LastStatus.PENDING)),
        "platformVersion": PLATFORM_VERSION, "platformFamily": "Linux", **capacity_shape(service),
        "taskDefinition": names.task_definition_arn(service.spec.name, service.primary.revision)
        if service.deployments else "",
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": config.deployment.circuit_breaker.enable,
                                         "rollback": config.deployment.circuit_breaker.rollback},
            "maximumPercent": config.deployment.maximum_percent,
            "minimumHealthyPercent": config.deployment.minimum_healthy_percent},
        "deployments": deployments_shape(names, service),
        "events": [{"id": e.id, "createdAt": e.at, "message": event_message(names, service.spec.name, e)}
                   for e in reversed(service.history)],
        "createdAt": service.created, "placementConstraints": [], "placementStrategy": [],
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-devenv"], "securityGroups": [],
                                                          "assignPublicIp": "DISABLED"}},
        "healthCheckGracePeriodSeconds": _seconds(config.health_check_grace_period),
        "schedulingStrategy": "REPLICA", "deploymentController": {"type": config.deployment_controller},
        "enableECSManagedTags": False, "propagateTags": "NONE", "enableExecuteCommand": False,
    }
    if config.load_balancer is not None and service.target_group is not None:
        shape["loadBalancers"] = [{"targetGroupArn": names.target_group_arn(service.spec.name),
                                   "containerName": service.spec.name, "containerPort": config.container_port}]
    if service.blue_green is not None:
        shape["taskSets"] = task_sets_shape(names, service)
    return shape


def task_sets_shape(names: Names, service: Service) -> list[dict]:
    """A CODE_DEPLOY service's task sets: PRIMARY (the one production traffic is on once a
    deployment completes), ACTIVE (the replacement during a deployment, or the original until
    it is terminated), DRAINING (being removed)."""
    config = service.spec.config
    shapes = []
    for task_set in service.blue_green.sets:
        tasks = [t for t in service.tasks if t.task_set == task_set.id and t.status is not LastStatus.STOPPED]
        steady = service.blue_green.steady(task_set)
        shapes.append({
            "id": task_set.id, "taskSetArn": names.task_set_arn(service.spec.name, task_set.id),
            "serviceArn": names.service_arn(service.spec.name), "clusterArn": names.cluster_arn,
            "startedBy": "CodeDeploy" if task_set.external_id and task_set.external_id.startswith("d-")
            else "ecs-svc", "externalId": task_set.external_id or "", "status": task_set.status,
            "taskDefinition": names.task_definition_arn(service.spec.name, task_set.revision),
            "computedDesiredCount": 0 if task_set.status == "DRAINING" else service.desired,
            "pendingCount": sum(1 for t in tasks if t.status in (LastStatus.PROVISIONING, LastStatus.PENDING)),
            "runningCount": sum(1 for t in tasks if t.status is LastStatus.RUNNING),
            "createdAt": task_set.created, "updatedAt": task_set.updated, "launchType": "FARGATE",
            "platformVersion": PLATFORM_VERSION, "platformFamily": "Linux",
            "loadBalancers": [{"targetGroupArn": names.target_group_arn(task_set.group),
                               "containerName": service.spec.name, "containerPort": config.container_port}],
            "scale": {"value": 0.0 if task_set.status == "DRAINING" else 100.0, "unit": "PERCENT"},
            "stabilityStatus": "STEADY_STATE" if steady else "STABILIZING",
            "stabilityStatusAt": task_set.updated,
        })
    return shapes


def _attachment_id(task_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"devenv-eni/{task_id}"))


def task_shape(names: Names, service: Service, task: Task) -> dict:
    config = service.spec.config
    attachment = _attachment_id(task.id)
    stopped = task.status is LastStatus.STOPPED
    container: dict[str, Any] = {
        "containerArn": names.container_arn(task.id), "taskArn": names.task_arn(task.id),
        "name": service.spec.name, "image": image(names, service, task.revision), "runtimeId": task.id,
        "lastStatus": CONTAINER_STATUS[task.status],
        "networkBindings": [], "networkInterfaces": [{"attachmentId": attachment, "privateIpv4Address": task.ip}],
        "healthStatus": task.health.value, "cpu": str(config.cpu), "memory": str(config.memory),
    }
    if task.exit_code is not None:
        container["exitCode"] = task.exit_code
    if task.stopped_reason and task.stop_code == "EssentialContainerExited":
        container["reason"] = task.stopped_reason
    shape: dict[str, Any] = {
        "taskArn": names.task_arn(task.id), "clusterArn": names.cluster_arn,
        "taskDefinitionArn": names.task_definition_arn(service.spec.name, task.revision),
        "lastStatus": task.status.value, "desiredStatus": task.desired_status, "healthStatus": task.health.value,
        "cpu": str(config.cpu), "memory": str(config.memory), "launchType": "FARGATE",
        "platformVersion": PLATFORM_VERSION, "platformFamily": "Linux", "group": f"service:{service.spec.name}",
        "availabilityZone": f"{names.region}a", "connectivity": "CONNECTED", "createdAt": task.created,
        "version": _version(task), "containers": [container], "attributes": [], "tags": [],
        "overrides": {"containerOverrides": [{"name": service.spec.name}]}, "enableExecuteCommand": False,
        "attachments": [{"id": attachment, "type": "ElasticNetworkInterface",
                         "status": "DELETED" if stopped else "ATTACHED",
                         "details": [{"name": "subnetId", "value": "subnet-devenv"},
                                     {"name": "networkInterfaceId", "value": f"eni-{task.id[:17]}"},
                                     {"name": "privateDnsName", "value": f"ip-{task.ip.replace('.', '-')}.ec2.internal"},
                                     {"name": "privateIPv4Address", "value": task.ip}]}],
    }
    optional = {"startedBy": task.started_by, "startedAt": task.started, "connectivityAt": task.started,
                "stoppingAt": task.stopping, "stoppedAt": task.stopped if stopped else None,
                "executionStoppedAt": task.stopped if stopped else None,
                "stoppedReason": task.stopped_reason if task.desired_status == "STOPPED" else None,
                "stopCode": task.stop_code if task.desired_status == "STOPPED" else None}
    shape.update({k: v for k, v in optional.items() if v is not None})
    if service.strategy:  # a task of a launch-type service names no capacity provider
        shape["capacityProviderName"] = task.capacity_provider
    return shape


def _version(task: Task) -> int:
    """ECS's task version: it grows with each change of the task's state."""
    order = list(LastStatus)
    return 1 + order.index(task.status) + (task.desired_status == "STOPPED")


def image(names: Names, service: Service, revision: int) -> str:
    return service.spec.config.image or f"devenv/{names.cluster}/{service.spec.name}:{revision}"


def task_definition_shape(names: Names, service: Service, revision: int) -> dict:
    spec = service.spec
    config = spec.config
    registered = next((d.created for d in service.deployments if d.revision == revision), service.created)
    container: dict[str, Any] = {
        "name": spec.name, "image": image(names, service, revision), "cpu": config.cpu, "memory": config.memory,
        "portMappings": [{"containerPort": config.container_port, "hostPort": config.container_port,
                          "protocol": "tcp"}],
        "essential": True,
        "environment": [{"name": k, "value": v} for k, v in sorted(config.environment.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(config.secrets.items())],
        "mountPoints": [], "volumesFrom": [], "systemControls": [],
    }
    if config.command:
        container["command"] = list(config.command)
    check = config.health_check
    if check is not None:
        container["healthCheck"] = {"command": list(check.command), "interval": _seconds(check.interval),
                                    "timeout": _seconds(check.timeout), "retries": check.retries,
                                    "startPeriod": _seconds(check.start_period)}
    if config.log_configuration is not None:
        container["logConfiguration"] = {
            "logDriver": config.log_configuration.log_driver,
            "options": config.log_configuration.options.model_dump(by_alias=True, exclude_none=True)}
    return {
        "taskDefinitionArn": names.task_definition_arn(spec.name, revision), "family": spec.name,
        "revision": revision, "containerDefinitions": [container], "networkMode": "awsvpc", "status": "ACTIVE",
        "volumes": [], "placementConstraints": [], "requiresAttributes": [],
        "compatibilities": ["EC2", "FARGATE"], "requiresCompatibilities": ["FARGATE"],
        "cpu": str(config.cpu), "memory": str(config.memory), "registeredAt": registered,
    }


def page(items: list, params: dict, default: int, most: int = 100,
         error: str = "InvalidParameterException") -> dict:
    """``maxResults``/``nextToken`` pagination (the token is an offset)."""
    size = params.get("maxResults") or default
    if not isinstance(size, int) or not 1 <= size <= most:
        raise ApiError(error, f"maxResults must be between 1 and {most}.")
    token = params.get("nextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise ApiError(error, "Invalid nextToken.") from None
    chunk = items[start:start + size]
    return {"items": chunk, "nextToken": str(start + size) if start + size < len(items) else None}


# ------------------------------------------------------------------ the operations


Operation = Callable[[dict], "dict | Awaitable[dict]"]


class EcsApi:
    """The ECS operations devenv answers, each ``params -> answer`` (ApiError for AWS's errors)."""

    def __init__(self, scheduler: Scheduler, names: Names):
        self.scheduler = scheduler
        self.names = names
        self.operations: dict[str, Operation] = {
            "ListClusters": self.list_clusters, "DescribeClusters": self.describe_clusters,
            "ListServices": self.list_services, "DescribeServices": self.describe_services,
            "ListTasks": self.list_tasks, "DescribeTasks": self.describe_tasks,
            "ListTaskDefinitions": self.list_task_definitions,
            "ListTaskDefinitionFamilies": self.list_task_definition_families,
            "DescribeTaskDefinition": self.describe_task_definition,
            "UpdateService": self.update_service, "StopTask": self.stop_task,
        }

    # -- lookups

    def _cluster(self, params: dict) -> None:
        """The request's cluster must be the stack's (none given: the stack's, where AWS would
        use ``default``)."""
        cluster = params.get("cluster")
        if cluster not in (None, "", self.names.cluster, self.names.cluster_arn):
            raise ApiError("ClusterNotFoundException", "Cluster not found.")

    def _service(self, reference: str) -> Service | None:
        name = reference.rsplit("/", 1)[-1] if reference.startswith("arn:") else reference
        service = self.scheduler.services.get(name)
        if service is not None and reference.startswith("arn:") and reference != self.names.service_arn(name):
            return None
        return service

    def _task(self, reference: str) -> tuple[Service, Task] | None:
        task_id = reference.rsplit("/", 1)[-1]
        for service in self.scheduler.services.values():
            for task in list(service.tasks) + list(service.stopped):
                if task.id == task_id:
                    return service, task
        return None

    # -- clusters

    def list_clusters(self, params: dict) -> dict:
        found = page([self.names.cluster_arn], params, 100)
        return _listed("clusterArns", found)

    def describe_clusters(self, params: dict) -> dict:
        clusters, failures = [], []
        for reference in params.get("clusters") or [self.names.cluster]:
            if reference in (self.names.cluster, self.names.cluster_arn):
                clusters.append(cluster_shape(self.names, self.scheduler))
            else:
                arn = reference if reference.startswith("arn:") else self.names.cluster_arn.rsplit("/", 1)[0] + "/" + reference
                failures.append({"arn": arn, "reason": "MISSING"})
        return {"clusters": clusters, "failures": failures}

    # -- services

    def list_services(self, params: dict) -> dict:
        self._cluster(params)
        if params.get("launchType") not in (None, "FARGATE") or params.get("schedulingStrategy") not in (None, "REPLICA"):
            return {"serviceArns": []}
        arns = [self.names.service_arn(name) for name in self.scheduler.services]
        return _listed("serviceArns", page(arns, params, 10))

    def describe_services(self, params: dict) -> dict:
        self._cluster(params)
        references = params.get("services")
        if not isinstance(references, list) or not references:
            raise ApiError("InvalidParameterException", "Services cannot be empty.")
        services, failures = [], []
        for reference in references:
            service = self._service(reference)
            if service is None:
                failures.append({"arn": reference if reference.startswith("arn:") else self.names.service_arn(reference),
                                 "reason": "MISSING"})
            else:
                services.append(service_shape(self.names, service))
        return {"services": services, "failures": failures}

    async def update_service(self, params: dict) -> dict:
        self._cluster(params)
        service = self._service(str(params.get("service") or ""))
        if service is None:
            raise ApiError("ServiceNotFoundException", "Service not found.")
        count = params.get("desiredCount")
        if count is not None:
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ApiError("InvalidParameterException", "desiredCount must be a whole number >= 0.")
            service.set_desired(count)
        definition = params.get("taskDefinition")
        if service.blue_green is not None and (definition or params.get("forceNewDeployment")):
            raise ApiError("InvalidParameterException", "Unable to update task definition on services with a "
                           "CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.")
        revision = None
        if definition:
            revision = self._revision(service, definition)
        if params.get("forceNewDeployment"):
            await self.scheduler.prepare_revision(service.spec)
            service.new_revision("forceNewDeployment")
        elif revision is not None and revision != service.primary.revision:
            service.redeploy(revision, f"UpdateService to task definition {service.spec.name}:{revision}")
        return {"service": service_shape(self.names, service)}

    # -- tasks

    def list_tasks(self, params: dict) -> dict:
        self._cluster(params)
        wanted = params.get("desiredStatus") or "RUNNING"
        family = params.get("family")
        service_name = params.get("serviceName")
        if service_name is not None:
            service = self._service(service_name)
            if service is None:
                raise ApiError("ServiceNotFoundException", "Service not found.")
            services = [service]
        else:
            services = list(self.scheduler.services.values())
        arns = []
        for service in services:
            if family is not None and family != service.spec.name:
                continue
            for task in list(service.tasks) + list(service.stopped):
                if task.desired_status == wanted and params.get("startedBy") in (None, task.started_by):
                    arns.append(self.names.task_arn(task.id))
        return _listed("taskArns", page(arns, params, 100))

    def describe_tasks(self, params: dict) -> dict:
        self._cluster(params)
        references = params.get("tasks")
        if not isinstance(references, list) or not references:
            raise ApiError("InvalidParameterException", "Tasks cannot be empty.")
        tasks, failures = [], []
        for reference in references:
            found = self._task(str(reference))
            if found is None:
                arn = reference if str(reference).startswith("arn:") else self.names.task_arn(reference)
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                tasks.append(task_shape(self.names, *found))
        return {"tasks": tasks, "failures": failures}

    def stop_task(self, params: dict) -> dict:
        self._cluster(params)
        found = self._task(str(params.get("task") or ""))
        if found is None:
            raise ApiError("InvalidParameterException", "The referenced task was not found.")
        service, task = found
        service.stop_task(task, params.get("reason") or "Task stopped by user", "UserInitiated")
        return {"task": task_shape(self.names, service, task)}

    # -- task definitions

    def _revision(self, service: Service, reference: str) -> int:
        text = reference.rsplit("/", 1)[-1] if reference.startswith("arn:") else reference
        family, _, number = text.partition(":")
        if family != service.spec.name:
            raise ApiError("ClientException", "Unable to describe task definition.")
        if not number:
            return service.revision
        if number.isdigit() and int(number) in service.revisions:
            return int(number)
        raise ApiError("ClientException", "Unable to describe task definition.")

    def list_task_definitions(self, params: dict) -> dict:
        prefix = params.get("familyPrefix")
        if params.get("status") not in (None, "ACTIVE"):
            return {"taskDefinitionArns": []}
        arns = [self.names.task_definition_arn(name, revision)
                for name, service in sorted(self.scheduler.services.items())
                if prefix is None or name == prefix for revision in sorted(service.revisions)]
        if params.get("sort") == "DESC":
            arns.reverse()
        return _listed("taskDefinitionArns", page(arns, params, 100))

    def list_task_definition_families(self, params: dict) -> dict:
        prefix = params.get("familyPrefix") or ""
        families = [name for name in sorted(self.scheduler.services) if name.startswith(prefix)]
        if params.get("status") == "INACTIVE":
            families = []
        return _listed("families", page(families, params, 100))

    def describe_task_definition(self, params: dict) -> dict:
        reference = str(params.get("taskDefinition") or "")
        text = reference.rsplit("/", 1)[-1] if reference.startswith("arn:") else reference
        service = self.scheduler.services.get(text.partition(":")[0])
        if service is None:
            raise ApiError("ClientException", "Unable to describe task definition.")
        revision = self._revision(service, reference)
        return {"taskDefinition": task_definition_shape(self.names, service, revision), "tags": []}


def _listed(key: str, found: dict) -> dict:
    answer = {key: found["items"]}
    if found["nextToken"] is not None:
        answer["nextToken"] = found["nextToken"]
    return answer
