"""The names AWS would give the stack's ECS, ELBv2 and Application Auto Scaling resources:
one cluster named after the stack, its services, tasks and task definitions, the internal
ALB, its listener, rules and target groups (one per service). Stable across restarts: an ARN
that needs a hash takes it from the stack's and the resource's names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

ACCOUNT = "123456789012"  # moto's account, as every devenv ARN uses


def _digest(*parts: str, length: int = 16) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Names:
    region: str
    cluster: str  # the stack's name
    account: str = ACCOUNT

    # -- ECS

    @property
    def cluster_arn(self) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:cluster/{self.cluster}"

    def service_arn(self, service: str) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:service/{self.cluster}/{service}"

    def task_arn(self, task_id: str) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:task/{self.cluster}/{task_id}"

    def container_arn(self, task_id: str) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:container/{self.cluster}/{task_id}/{_digest(task_id, length=32)}"

    def task_set_arn(self, service: str, task_set_id: str) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:task-set/{self.cluster}/{service}/{task_set_id}"

    def task_definition_arn(self, family: str, revision: int) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:task-definition/{family}:{revision}"

    # -- ELBv2

    @property
    def load_balancer_name(self) -> str:
        return f"{self.cluster}-alb"[:32]

    @property
    def load_balancer_arn(self) -> str:
        return (f"arn:aws:elasticloadbalancing:{self.region}:{self.account}:loadbalancer/app/"
                f"{self.load_balancer_name}/{_digest(self.cluster, 'alb')}")

    @property
    def listener_arn(self) -> str:
        return (f"arn:aws:elasticloadbalancing:{self.region}:{self.account}:listener/app/"
                f"{self.load_balancer_name}/{_digest(self.cluster, 'alb')}/{_digest(self.cluster, 'listener')}")

    def test_listener_arn(self, service: str) -> str:
        """A CODE_DEPLOY service's test listener."""
        return (f"arn:aws:elasticloadbalancing:{self.region}:{self.account}:listener/app/"
                f"{self.load_balancer_name}/{_digest(self.cluster, 'alb')}/{_digest(self.cluster, 'test', service)}")

    def rule_arn(self, key: str) -> str:
        return (f"arn:aws:elasticloadbalancing:{self.region}:{self.account}:listener-rule/app/"
                f"{self.load_balancer_name}/{_digest(self.cluster, 'alb')}/{_digest(self.cluster, 'listener')}/"
                f"{_digest(self.cluster, 'rule', key)}")

    def target_group_name(self, service: str) -> str:
        return service[:32]

    def target_group_arn(self, service: str) -> str:
        return (f"arn:aws:elasticloadbalancing:{self.region}:{self.account}:targetgroup/"
                f"{self.target_group_name(service)}/{_digest(self.cluster, 'tg', service)}")

    # -- Application Auto Scaling

    def resource_id(self, service: str) -> str:
        return f"service/{self.cluster}/{service}"

    def scalable_target_arn(self, service: str) -> str:
        return (f"arn:aws:application-autoscaling:{self.region}:{self.account}:scalable-target/"
                f"{_digest(self.cluster, 'target', service, length=36)}")

    def policy_name(self, service: str) -> str:
        return f"{service}-cpu-target-tracking"

    def policy_arn(self, service: str) -> str:
        return (f"arn:aws:autoscaling:{self.region}:{self.account}:scalingPolicy:"
                f"{_digest(self.cluster, 'policy', service, length=32)}:resource/ecs/{self.resource_id(service)}:"
                f"policyName/{self.policy_name(service)}")

    def alarm_name(self, service: str, high: bool) -> str:
        return (f"TargetTracking-{self.resource_id(service)}-{'AlarmHigh' if high else 'AlarmLow'}-"
                f"{_digest(self.cluster, 'alarm', service, str(high), length=32)}")

    def alarm_arn(self, service: str, high: bool) -> str:
        return f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{self.alarm_name(service, high)}"
