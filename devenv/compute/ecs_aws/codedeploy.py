"""The CodeDeploy API (JSON 1.1, ``CodeDeploy_20141006.*``) over the blue/green deployments of
the stack's CODE_DEPLOY services (``compute/ecs/task_sets.py``): what a hook function calls to
report its result (PutLifecycleEventHookExecutionStatus), and what a client reads
(GetDeployment, BatchGetDeployments, ListDeployments, ListApplications, ListDeploymentGroups).

Each CODE_DEPLOY service has the application and deployment group the ECS console creates for
it: ``AppECS-<cluster>-<service>`` and ``DgpECS-<cluster>-<service>``."""

from __future__ import annotations

from devenv.compute.ecs.bluegreen import Status
from devenv.compute.ecs.scheduler import Scheduler, Service
from devenv.compute.ecs.task_sets import BlueGreen, CodeDeployment
from devenv.compute.ecs_aws.arns import Names
from devenv.compute.ecs_aws.wire import ApiError

TARGET_PREFIX = "CodeDeploy_20141006"
HOOK_STATUSES = ("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Unknown")


def application_name(names: Names, service: str) -> str:
    return f"AppECS-{names.cluster}-{service}"


def group_name(names: Names, service: str) -> str:
    return f"DgpECS-{names.cluster}-{service}"


def deployment_shape(names: Names, service: Service, deployment: CodeDeployment) -> dict:
    """DeploymentInfo, as GetDeployment answers it for an ECS blue/green deployment."""
    machine = deployment.machine
    status = machine.status
    shape = {
        "applicationName": application_name(names, service.spec.name),
        "deploymentGroupName": group_name(names, service.spec.name),
        "deploymentConfigName": deployment.config_name, "deploymentId": deployment.id,
        "status": status.value, "createTime": deployment.created, "creator": "user",
        "description": deployment.reason, "computePlatform": "ECS",
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": _appspec(names, service,
                                                                                            deployment)}},
        "deploymentOverview": _overview(status),
        "instanceTerminationWaitTimeStarted": machine.terminate_at is not None or status is Status.SUCCEEDED,
        "fileExistsBehavior": "DISALLOW",
    }
    if machine.created is not None:
        shape["startTime"] = machine.created
    if machine.completed is not None:
        shape["completeTime"] = machine.completed
    if status is Status.FAILED:
        shape["errorInformation"] = {"code": "HEALTH_CONSTRAINTS" if "unhealthy" in machine.message
                                     else "HOOK_EXECUTION_FAILURE" if "hook" in machine.message
                                     else "INTERNAL_ERROR", "message": machine.message}
        if machine.rolled_back:
            shape["rollbackInfo"] = {"rollbackMessage": f"Rolled back: all production traffic is on the original "
                                                        f"task set; the replacement was removed ({machine.message})"}
    return shape


def _overview(status: Status) -> dict:
    counts = dict.fromkeys(("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready"), 0)
    key = {Status.CREATED: "Pending", Status.IN_PROGRESS: "InProgress", Status.SUCCEEDED: "Succeeded",
           Status.FAILED: "Failed", Status.STOPPED: "Skipped"}[status]
    counts[key] = 1
    return counts


def _appspec(names: Names, service: Service, deployment: CodeDeployment) -> str:
    """The AppSpec the deployment amounts to (JSON): the target service, its task definition
    revision, container and port, and the hooks."""
    import json

    config = service.spec.config
    hooks = [{event: function} for event, function in dict(deployment.machine.plan.hooks).items()]
    return json.dumps({"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
        "TaskDefinition": names.task_definition_arn(service.spec.name, deployment.revision),
        "LoadBalancerInfo": {"ContainerName": service.spec.name, "ContainerPort": config.container_port}}}}],
        "Hooks": hooks})


class CodeDeployApi:
    """The CodeDeploy operations devenv answers, each ``params -> answer``."""

    def __init__(self, scheduler: Scheduler, names: Names):
        self.scheduler = scheduler
        self.names = names
        self.operations = {
            "GetDeployment": self.get_deployment, "BatchGetDeployments": self.batch_get_deployments,
            "ListDeployments": self.list_deployments, "ListApplications": self.list_applications,
            "ListDeploymentGroups": self.list_deployment_groups,
            "PutLifecycleEventHookExecutionStatus": self.put_lifecycle_event_hook_execution_status,
        }

    def _blue_green(self) -> dict[str, tuple[Service, BlueGreen]]:
        return {name: (service, service.blue_green) for name, service in self.scheduler.services.items()
                if service.blue_green is not None}

    def _find(self, deployment_id: str | None) -> tuple[Service, CodeDeployment]:
        if not deployment_id:
            raise ApiError("DeploymentIdRequiredException", "At least one deployment ID must be specified.")
        for service, blue_green in self._blue_green().values():
            found = blue_green.deployment(deployment_id)
            if found is not None:
                return service, found
        if not deployment_id.startswith("d-"):
            raise ApiError("InvalidDeploymentIdException", f"Specified DeploymentId is not in the valid format: "
                                                           f"{deployment_id}")
        raise ApiError("DeploymentDoesNotExistException", f"The deployment {deployment_id} could not be found.")

    def _service_of_group(self, params: dict) -> list[tuple[Service, BlueGreen]]:
        application, group = params.get("applicationName"), params.get("deploymentGroupName")
        every = list(self._blue_green().values())
        if application is None and group is None:
            return every
        if application is None:
            raise ApiError("ApplicationNameRequiredException", "The application name must be specified.")
        if group is None:
            raise ApiError("DeploymentGroupNameRequiredException", "The deployment group name must be specified.")
        for service, blue_green in every:
            if application == application_name(self.names, service.spec.name):
                if group != group_name(self.names, service.spec.name):
                    raise ApiError("DeploymentGroupDoesNotExistException",
                                   f"No Deployment Group found for name: {group}")
                return [(service, blue_green)]
        raise ApiError("ApplicationDoesNotExistException", f"No application found for name: {application}")

    # -- operations

    def get_deployment(self, params: dict) -> dict:
        service, deployment = self._find(params.get("deploymentId"))
        return {"deploymentInfo": deployment_shape(self.names, service, deployment)}

    def batch_get_deployments(self, params: dict) -> dict:
        ids = params.get("deploymentIds") or []
        if not ids:
            raise ApiError("DeploymentIdRequiredException", "At least one deployment ID must be specified.")
        found = []
        for deployment_id in ids:
            try:
                service, deployment = self._find(deployment_id)
            except ApiError:
                continue
            found.append(deployment_shape(self.names, service, deployment))
        return {"deploymentsInfo": found}

    def list_deployments(self, params: dict) -> dict:
        statuses = params.get("includeOnlyStatuses") or []
        for status in statuses:
            if status not in {s.value for s in Status} | {"Queued", "Baking", "Ready"}:
                raise ApiError("InvalidDeploymentStatusException", f"Invalid deployment status: {status}")
        found = [d for _, blue_green in self._service_of_group(params) for d in blue_green.deployments
                 if not statuses or d.status.value in statuses]
        found.sort(key=lambda d: d.created, reverse=True)  # newest first, as CodeDeploy lists them
        token = params.get("nextToken")
        try:
            start = int(token) if token else 0
        except ValueError:
            raise ApiError("InvalidNextTokenException", "The next token was specified in an invalid format.") from None
        chunk = found[start:start + 100]
        answer: dict = {"deployments": [d.id for d in chunk]}
        if start + 100 < len(found):
            answer["nextToken"] = str(start + 100)
        return answer

    def list_applications(self, params: dict) -> dict:
        return {"applications": [application_name(self.names, name) for name in self._blue_green()]}

    def list_deployment_groups(self, params: dict) -> dict:
        application = params.get("applicationName")
        if not application:
            raise ApiError("ApplicationNameRequiredException", "The application name must be specified.")
        for name in self._blue_green():
            if application == application_name(self.names, name):
                return {"applicationName": application, "deploymentGroups": [group_name(self.names, name)]}
        raise ApiError("ApplicationDoesNotExistException", f"No application found for name: {application}")

    def put_lifecycle_event_hook_execution_status(self, params: dict) -> dict:
        service, deployment = self._find(params.get("deploymentId"))
        execution_id = params.get("lifecycleEventHookExecutionId") or ""
        status = params.get("status")
        if status not in HOOK_STATUSES:
            raise ApiError("InvalidLifecycleEventHookExecutionStatusException",
                           f"Invalid lifecycle event hook execution status: {status}")
        step = next((s for s in deployment.machine.steps.values() if s.execution_id == execution_id), None)
        if step is None:
            raise ApiError("InvalidLifecycleEventHookExecutionIdException",
                           f"Lifecycle event hook execution id {execution_id} is not valid for deployment "
                           f"{deployment.id}.")
        if step.status.value not in ("Pending", "InProgress"):
            raise ApiError("LifecycleEventAlreadyCompletedException",
                           f"Lifecycle event hook execution {execution_id} has already completed "
                           f"({step.status.value}).")
        assert service.blue_green is not None
        service.blue_green.report(deployment.id, execution_id, status)
        return {"lifecycleEventHookExecutionId": execution_id}
