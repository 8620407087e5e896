"""The Application Auto Scaling API (JSON 1.1, ``AnyScaleFrontendService.*``) for the ECS
services' desired counts: a scalable target per service with ``autoscaling`` (or registered
through the API), its target-tracking policy on average CPU, and one scaling activity per
change the scheduler made, worded as AWS words them. Shapes are pure functions of a service."""

from __future__ import annotations

from devenv.compute.ecs.autoscaling import ScalingCause
from devenv.compute.ecs.scheduler import ScalingActivity, Scheduler, Service
from devenv.compute.ecs_aws.arns import Names
from devenv.compute.ecs_aws.ecs import page
from devenv.compute.ecs_aws.wire import ApiError

TARGET_PREFIX = "AnyScaleFrontendService"
NAMESPACE = "ecs"
DIMENSION = "ecs:service:DesiredCount"
ROLE = "arn:aws:iam::{account}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/" \
       "AWSServiceRoleForApplicationAutoScaling_ECSService"


def _ids(names: Names, service: Service) -> dict:
    return {"ServiceNamespace": NAMESPACE, "ResourceId": names.resource_id(service.spec.name),
            "ScalableDimension": DIMENSION}


def scalable_target_shape(names: Names, service: Service) -> dict:
    bounds = service.autoscaling
    assert bounds is not None
    return {**_ids(names, service), "MinCapacity": bounds.min, "MaxCapacity": bounds.max,
            "RoleARN": ROLE.format(account=names.account), "CreationTime": service.scalable_since,
            "SuspendedState": {"DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
                               "ScheduledScalingSuspended": False},
            "ScalableTargetARN": names.scalable_target_arn(service.spec.name)}


def policy_shape(names: Names, service: Service) -> dict:
    config = service.autoscaling
    assert config is not None
    name = service.spec.name
    return {
        "PolicyARN": names.policy_arn(name), "PolicyName": names.policy_name(name), **_ids(names, service),
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": float(config.target_cpu),
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            "ScaleOutCooldown": int(config.scale_out_cooldown), "ScaleInCooldown": int(config.scale_in_cooldown),
            "DisableScaleIn": False},
        "Alarms": [{"AlarmName": names.alarm_name(name, high), "AlarmARN": names.alarm_arn(name, high)}
                   for high in (True, False)],
        "CreationTime": service.scalable_since,
    }


def activity_cause(names: Names, service: str, activity: ScalingActivity) -> str:
    """AWS's cause wording: the alarm that triggered the policy, or the capacity that moved."""
    if activity.cause is ScalingCause.BOUNDS:
        which = "maximum" if activity.bound == "max" else "minimum"
        return f"{which} capacity was set to {activity.desired}"
    high = activity.cause is ScalingCause.ALARM_HIGH
    return (f"monitor alarm {names.alarm_name(service, high)} in state ALARM triggered policy "
            f"{names.policy_name(service)}")


def activity_shape(names: Names, service: Service, activity: ScalingActivity) -> dict:
    return {
        "ActivityId": activity.id, **_ids(names, service),
        "Description": f"Setting desired count to {activity.desired}.",
        "Cause": activity_cause(names, service.spec.name, activity),
        "StartTime": activity.at, "EndTime": activity.at, "StatusCode": "Successful",
        "StatusMessage": f"Successfully set desired count to {activity.desired}. "
                         "Change successfully fulfilled by ecs.",
    }


class AutoscalingApi:
    """The Application Auto Scaling operations devenv answers (namespace ``ecs`` only)."""

    def __init__(self, scheduler: Scheduler, names: Names):
        self.scheduler = scheduler
        self.names = names
        self.operations = {
            "DescribeScalableTargets": self.describe_scalable_targets,
            "RegisterScalableTarget": self.register_scalable_target,
            "DescribeScalingPolicies": self.describe_scaling_policies,
            "DescribeScalingActivities": self.describe_scaling_activities,
        }

    def _namespace(self, params: dict) -> bool:
        namespace = params.get("ServiceNamespace")
        if not namespace:
            raise ApiError("ValidationException", "1 validation error detected: Value null at 'serviceNamespace' "
                                                  "failed to satisfy constraint: Member must not be null")
        return namespace == NAMESPACE

    def _chosen(self, params: dict, *, registered: bool = True) -> list[Service]:
        """The services the request's ResourceId(s) and dimension name (all of them when none)."""
        dimension = params.get("ScalableDimension")
        if dimension not in (None, DIMENSION):
            return []
        ids = params.get("ResourceIds") or ([params["ResourceId"]] if params.get("ResourceId") else None)
        services = [s for s in self.scheduler.services.values() if not registered or s.autoscaling is not None]
        if ids is not None:
            services = [s for s in services if self.names.resource_id(s.spec.name) in ids]
        return services

    def describe_scalable_targets(self, params: dict) -> dict:
        if not self._namespace(params):
            return {"ScalableTargets": []}
        found = page([scalable_target_shape(self.names, s) for s in self._chosen(params)],
                     _paging(params), 50, 50, "ValidationException")
        return _listed("ScalableTargets", found)

    def register_scalable_target(self, params: dict) -> dict:
        if not self._namespace(params):
            raise ApiError("ValidationException", "devenv answers the ecs service namespace only")
        resource = params.get("ResourceId")
        service = next((s for s in self.scheduler.services.values()
                        if self.names.resource_id(s.spec.name) == resource), None)
        if service is None or params.get("ScalableDimension") != DIMENSION:
            raise ApiError("ValidationException", f"ECS service doesn't exist: {resource}")
        minimum, maximum = params.get("MinCapacity"), params.get("MaxCapacity")
        for value in (minimum, maximum):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ApiError("ValidationException", "MinCapacity and MaxCapacity must be whole numbers >= 0")
        if service.autoscaling is None and (minimum is None or maximum is None):
            raise ApiError("ValidationException", "MinCapacity and MaxCapacity are required to register a new "
                                                  "scalable target")
        low = minimum if minimum is not None else service.autoscaling.min
        high = maximum if maximum is not None else service.autoscaling.max
        if low > high:
            raise ApiError("ValidationException", f"Minimum capacity cannot be greater than maximum capacity")
        try:
            service.register_scalable_target(minimum, maximum)
        except ValueError as error:  # the config's own limits (a max of at least 1, ...)
            raise ApiError("ValidationException", str(error).splitlines()[0]) from None
        return {"ScalableTargetARN": self.names.scalable_target_arn(service.spec.name)}

    def describe_scaling_policies(self, params: dict) -> dict:
        if not self._namespace(params):
            return {"ScalingPolicies": []}
        names = params.get("PolicyNames")
        policies = [policy_shape(self.names, s) for s in self._chosen(params) if s.tracking]
        if names:
            policies = [p for p in policies if p["PolicyName"] in names]
        return _listed("ScalingPolicies", page(policies, _paging(params), 50, 50, "ValidationException"))

    def describe_scaling_activities(self, params: dict) -> dict:
        if not self._namespace(params):
            return {"ScalingActivities": []}
        activities = [(a.at, activity_shape(self.names, s, a)) for s in self._chosen(params, registered=False)
                      for a in s.activities]
        activities.sort(key=lambda pair: pair[0], reverse=True)  # newest first, as AWS lists them
        return _listed("ScalingActivities", page([a for _, a in activities], _paging(params), 50, 50, "ValidationException"))


def _paging(params: dict) -> dict:
    return {"maxResults": params.get("MaxResults"), "nextToken": params.get("NextToken")}


def _listed(key: str, found: dict) -> dict:
    answer = {key: found["items"]}
    if found["nextToken"] is not None:
        answer["NextToken"] = found["nextToken"]
    return answer
