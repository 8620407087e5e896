"""The ELBv2 API (query protocol, XML answers) over the internal ALB: its one load balancer,
one HTTP listener, the listener rules devenv.yaml declares (each service's own rule and
``load_balancer.rules``; a CODE_DEPLOY service's forwards by CodeDeploy's weights of the
moment), a target group per service with a load_balancer section (and a CODE_DEPLOY service's
second one), and each group's targets as its health checks see them (``TargetGroup.described``).

Shapes are pure functions of the config and the target groups' snapshots; ELBv2's integer
fields (intervals, timeouts) show devenv's fractional seconds rounded up, and at least ELBv2's
minimums (an interval of 5 s, a timeout of 2 s)."""

from __future__ import annotations

from typing import Any, Mapping

from devenv.compute.alb.balancer import TargetSnapshot
from devenv.compute.alb.health import TargetState
from devenv.compute.ecs_aws.arns import Names
from devenv.compute.ecs_aws.ecs import _seconds
from devenv.compute.ecs_aws.wire import ApiError, query_list, query_structs
from devenv.config.model import (ListenerConditions, ListenerRuleConfig, LoadBalancerConfig, ServiceLoadBalancerConfig,
                                  TargetGroupStickinessConfig)

VPC = "vpc-devenv"
# ELBv2's least health-check interval and timeout (its model's minimums): devenv's config allows
# shorter ones for fast local checks, shown as these.
MIN_INTERVAL, MIN_TIMEOUT = 5, 2
HOSTED_ZONE = "Z35SXDOTRQ7X7K"  # us-east-1's ALB zone; any stable id does locally


def load_balancer_shape(names: Names, config: LoadBalancerConfig, created: float) -> dict:
    return {
        "LoadBalancerArn": names.load_balancer_arn, "DNSName": config.hostname,
        "CanonicalHostedZoneId": HOSTED_ZONE, "CreatedTime": created, "LoadBalancerName": names.load_balancer_name,
        "Scheme": "internal", "VpcId": VPC, "State": {"Code": "active"}, "Type": "application",
        "AvailabilityZones": [{"ZoneName": f"{names.region}a", "SubnetId": "subnet-devenv",
                               "LoadBalancerAddresses": []}],
        "SecurityGroups": [], "IpAddressType": "ipv4",
    }


def listener_shape(names: Names, port: int, arn: str | None = None) -> dict:
    return {"ListenerArn": arn or names.listener_arn, "LoadBalancerArn": names.load_balancer_arn, "Port": port,
            "Protocol": "HTTP", "DefaultActions": [default_action()]}


def default_action() -> dict:
    """devenv's default rule: a fixed 404 (``alb.framing.NOT_FOUND``)."""
    return {"Type": "fixed-response", "Order": 1, "FixedResponseConfig": {
        "StatusCode": "404", "ContentType": "text/plain",
        "MessageBody": "Not Found: no listener rule matches this request\n"}}


def conditions_shape(conditions: ListenerConditions) -> list[dict]:
    shown: list[dict[str, Any]] = []
    if conditions.paths:
        shown.append({"Field": "path-pattern", "Values": list(conditions.paths),
                      "PathPatternConfig": {"Values": list(conditions.paths)}})
    if conditions.hosts:
        shown.append({"Field": "host-header", "Values": list(conditions.hosts),
                      "HostHeaderConfig": {"Values": list(conditions.hosts)}})
    for name, values in conditions.headers.items():
        shown.append({"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": name, "Values": list(values)}})
    if conditions.methods:
        shown.append({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": list(conditions.methods)}})
    for key, values in conditions.query.items():
        shown.append({"Field": "query-string",
                      "QueryStringConfig": {"Values": [{"Key": key, "Value": v} for v in values]}})
    if conditions.source_ips:
        shown.append({"Field": "source-ip", "SourceIpConfig": {"Values": list(conditions.source_ips)}})
    return shown


def forward_action(names: Names, weights: Mapping[str, int],
                   stickiness: TargetGroupStickinessConfig | None = None) -> dict:
    groups = [{"TargetGroupArn": names.target_group_arn(s), "Weight": w} for s, w in weights.items()]
    sticky: dict[str, Any] = {"Enabled": False}
    if stickiness is not None and stickiness.enabled:
        sticky = {"Enabled": True, "DurationSeconds": stickiness.duration}
    action: dict[str, Any] = {"Type": "forward", "Order": 1, "ForwardConfig": {
        "TargetGroups": groups, "TargetGroupStickinessConfig": sticky}}
    if len(groups) == 1:
        action["TargetGroupArn"] = groups[0]["TargetGroupArn"]
    return action


def rule_action(names: Names, rule: ListenerRuleConfig) -> dict:
    if rule.forward is not None:
        return forward_action(names, rule.forward, rule.target_group_stickiness)
    if rule.fixed_response is not None:
        fixed = rule.fixed_response
        return {"Type": "fixed-response", "Order": 1, "FixedResponseConfig": {
            "StatusCode": fixed.status_code, "ContentType": fixed.content_type, "MessageBody": fixed.message_body}}
    redirect = rule.redirect
    assert redirect is not None
    return {"Type": "redirect", "Order": 1, "RedirectConfig": {
        "Protocol": redirect.protocol, "Port": redirect.port, "Host": redirect.host, "Path": redirect.path,
        "Query": redirect.query, "StatusCode": redirect.status_code}}


def rules_shape(names: Names, services: Mapping[str, ServiceLoadBalancerConfig],
                rules: list[ListenerRuleConfig], weights: Mapping[str, Mapping[str, int]] | None = None) -> list[dict]:
    """Every rule of the listener by priority, then the default rule; a blue/green service's
    rule forwards by its ``weights`` now (target group -> weight)."""
    weights = weights or {}
    shown = [(s.priority, {"RuleArn": names.rule_arn(f"service/{name}"), "Priority": str(s.priority),
                           "Conditions": conditions_shape(s),
                           "Actions": [forward_action(names, weights.get(name) or {name: 1})],
                           "IsDefault": False}) for name, s in services.items()]
    shown += [(r.priority, {"RuleArn": names.rule_arn(f"rule/{r.priority}"), "Priority": str(r.priority),
                            "Conditions": conditions_shape(r), "Actions": [rule_action(names, r)], "IsDefault": False})
              for r in rules]
    shown.sort(key=lambda pair: pair[0])
    default = {"RuleArn": names.rule_arn("default"), "Priority": "default", "Conditions": [],
               "Actions": [default_action()], "IsDefault": True}
    return [rule for _, rule in shown] + [default]


def target_group_shape(names: Names, service: str, config: ServiceLoadBalancerConfig, port: int) -> dict:
    check = config.health_check
    return {
        "TargetGroupArn": names.target_group_arn(service), "TargetGroupName": names.target_group_name(service),
        "Protocol": "HTTP", "Port": port, "VpcId": VPC, "HealthCheckProtocol": "HTTP",
        "HealthCheckPort": "traffic-port", "HealthCheckEnabled": True,
        "HealthCheckIntervalSeconds": max(MIN_INTERVAL, _seconds(check.interval)),
        "HealthCheckTimeoutSeconds": max(MIN_TIMEOUT, _seconds(check.timeout)),
        "HealthyThresholdCount": check.healthy_threshold, "UnhealthyThresholdCount": check.unhealthy_threshold,
        "HealthCheckPath": check.path,
        "Matcher": {"GrpcCode" if config.protocol_version == "GRPC" else "HttpCode": check.matcher},
        "LoadBalancerArns": [names.load_balancer_arn], "TargetType": "ip", "ProtocolVersion": config.protocol_version,
        "IpAddressType": "ipv4",
    }


def target_group_attributes(config: ServiceLoadBalancerConfig) -> list[dict]:
    sticky = config.stickiness is not None and config.stickiness.enabled
    attributes = {
        "deregistration_delay.timeout_seconds": str(_seconds(config.deregistration_delay)),
        "stickiness.enabled": "true" if sticky else "false", "stickiness.type": "lb_cookie",
        "stickiness.lb_cookie.duration_seconds": str(config.stickiness.duration if config.stickiness else 86400),
        "load_balancing.algorithm.type": config.algorithm,
        "slow_start.duration_seconds": str(config.slow_start),
    }
    return [{"Key": k, "Value": v} for k, v in attributes.items()]


def target_health_shape(target: TargetSnapshot) -> dict:
    """One DescribeTargetHealth row: the target by its IP (an ``ip`` target group), its state,
    and AWS's reason code and description for any state but healthy."""
    health: dict[str, Any] = {"State": target.state.value}
    if target.state is not TargetState.HEALTHY and target.reason is not None:
        health["Reason"] = target.reason.value
        health["Description"] = target.description
    return {"Target": {"Id": target.host, "Port": target.port, "AvailabilityZone": "all"},
            "HealthCheckPort": str(target.port), "TargetHealth": health}


# ------------------------------------------------------------------ the operations


class Elbv2Api:
    """The ELBv2 operations devenv answers over ``balancer`` (None: a stack without a load
    balancer, which has none to describe)."""

    def __init__(self, balancer, config: LoadBalancerConfig | None,
                 services: Mapping[str, ServiceLoadBalancerConfig], names: Names, *, created: float,
                 ports: Mapping[str, int]):
        self.balancer = balancer
        self.config = config
        self.services = services
        self.names = names
        self.created = created
        self.ports = ports  # each service's container port
        self.operations = {
            "DescribeLoadBalancers": self.describe_load_balancers, "DescribeListeners": self.describe_listeners,
            "DescribeRules": self.describe_rules, "DescribeTargetGroups": self.describe_target_groups,
            "DescribeTargetHealth": self.describe_target_health,
            "DescribeTargetGroupAttributes": self.describe_target_group_attributes,
        }

    def _require_balancer(self, arn: str | None, error: str = "LoadBalancerNotFound") -> None:
        if self.config is None or (arn is not None and arn != self.names.load_balancer_arn):
            raise ApiError(error, f"Load balancers '[{arn}]' not found" if arn else "Load balancer not found")

    def _groups(self) -> dict[str, str]:
        """Target group name -> the service it holds: one per service, and a CODE_DEPLOY
        service's second one."""
        if self.balancer is None:
            return {service: service for service in self.services}
        return {name: getattr(group, "service", name) for name, group in self.balancer.groups.items()}

    def _weights(self) -> dict[str, dict[str, int]]:
        """The blue/green services' production weights now."""
        found = {}
        for service in self.services:
            try:
                found[service] = self.balancer.traffic(service).weights()
            except (AttributeError, KeyError):
                continue
        return found

    def _test_listeners(self) -> dict[str, tuple[str, int, dict[str, int]]]:
        """The CODE_DEPLOY services' test listeners: service -> (ARN, port, its forward's weights)."""
        found = {}
        for service in self.services:
            try:
                traffic = self.balancer.traffic(service)
            except (AttributeError, KeyError):
                continue
            if traffic.test is not None and traffic.test_port:
                found[service] = (self.names.test_listener_arn(service), traffic.test_port, traffic.test.weights())
        return found

    def _group_of(self, arn: str) -> str:
        for group in self._groups():
            if self.names.target_group_arn(group) == arn:
                return group
        raise ApiError("TargetGroupNotFound", f"Target groups '[{arn}]' not found")

    def _group_shape(self, group: str) -> dict:
        service = self._groups()[group]
        return target_group_shape(self.names, group, self.services[service], self.ports[service])

    def describe_load_balancers(self, params: dict) -> dict:
        arns, wanted = query_list(params, "LoadBalancerArns"), query_list(params, "Names")
        if self.config is None:
            if arns or wanted:
                raise ApiError("LoadBalancerNotFound", "One or more load balancers not found")
            return {"LoadBalancers": []}
        for arn in arns:
            self._require_balancer(arn)
        for name in wanted:
            if name != self.names.load_balancer_name:
                raise ApiError("LoadBalancerNotFound", f"Load balancers '[{name}]' not found")
        return {"LoadBalancers": [load_balancer_shape(self.names, self.config, self.created)]}

    def describe_listeners(self, params: dict) -> dict:
        arns = query_list(params, "ListenerArns")
        balancer = params.get("LoadBalancerArn")
        if not arns and not balancer:
            raise ApiError("ValidationError", "You must specify either listener ARNs or a load balancer ARN")
        self._require_balancer(balancer)
        listeners = [listener_shape(self.names, self.balancer.port)]
        listeners += [listener_shape(self.names, port, arn) for arn, port, _ in self._test_listeners().values()]
        for arn in arns:
            if arn not in {listener["ListenerArn"] for listener in listeners}:
                raise ApiError("ListenerNotFound", f"Listeners '[{arn}]' not found")
        return {"Listeners": [listener for listener in listeners if not arns or listener["ListenerArn"] in arns]}

    def describe_rules(self, params: dict) -> dict:
        listener, arns = params.get("ListenerArn"), query_list(params, "RuleArns")
        if not listener and not arns:
            raise ApiError("ValidationError", "You must specify either listener ARN or rule ARNs")
        tests = {arn: (service, weights) for service, (arn, _, weights) in self._test_listeners().items()}
        if self.config is None or (listener and listener != self.names.listener_arn and listener not in tests):
            raise ApiError("ListenerNotFound", f"Listener '{listener}' not found")
        if listener in tests:  # a test listener: the service's rule, forwarding where CodeDeploy points it
            service, weights = tests[listener]
            rules = rules_shape(self.names, {service: self.services[service]}, [], {service: weights})
            for rule in rules:
                rule["RuleArn"] = self.names.rule_arn(f"test/{service}/{rule['Priority']}")
        else:
            rules = rules_shape(self.names, self.services, list(self.config.rules), self._weights())
        if arns:
            missing = [arn for arn in arns if arn not in {r["RuleArn"] for r in rules}]
            if missing:
                raise ApiError("RuleNotFound", f"Rules '{missing}' not found")
            rules = [r for r in rules if r["RuleArn"] in arns]
        return {"Rules": rules}

    def describe_target_groups(self, params: dict) -> dict:
        balancer, arns, wanted = (params.get("LoadBalancerArn"), query_list(params, "TargetGroupArns"),
                                  query_list(params, "Names"))
        if balancer:
            self._require_balancer(balancer)
        chosen = list(self._groups())
        if arns:
            chosen = [self._group_of(arn) for arn in arns]
        if wanted:
            by_name = {self.names.target_group_name(g): g for g in self._groups()}
            missing = [n for n in wanted if n not in by_name]
            if missing:
                raise ApiError("TargetGroupNotFound", f"One or more target groups not found")
            chosen = [by_name[n] for n in wanted]
        return {"TargetGroups": [self._group_shape(g) for g in chosen]}

    def describe_target_group_attributes(self, params: dict) -> dict:
        group = self._group_of(params.get("TargetGroupArn", ""))
        return {"Attributes": target_group_attributes(self.services[self._groups()[group]])}

    def describe_target_health(self, params: dict) -> dict:
        group = self._group_of(params.get("TargetGroupArn", ""))
        targets = self.balancer.group(group).described()
        wanted = query_structs(params, "Targets")
        rows = [target_health_shape(t) for t in targets]
        if wanted:
            chosen = []
            for target in wanted:
                found = [r for r in rows if r["Target"]["Id"] == target.get("Id")
                         and ("Port" not in target or str(r["Target"]["Port"]) == target["Port"])]
                asked = {"Id": target.get("Id", "")}
                if str(target.get("Port", "")).isdigit():
                    asked["Port"] = int(target["Port"])
                chosen += found or [{"Target": asked,
                                     "TargetHealth": {"State": "unused", "Reason": "Target.NotRegistered",
                                                      "Description": "Target is not registered to the target group"}}]
            rows = chosen
        return {"TargetHealthDescriptions": rows}
