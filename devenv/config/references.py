"""Checks that relate fields of a valid StackConfig to each other.

The model validates each object on its own; what it cannot see is whether a name used in one
place is defined in another, whether two sections claim the same port or priority, and the
rules AWS applies across resources (a FIFO queue's DLQ is FIFO, a queue feeding a function
stays invisible at least as long as the function runs). These checks are pure: they read the
config and return problems, located by field path, for the loader to place in files.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from devenv.config.event_pattern import check_pattern
from devenv.config.location import Loc, format_path
from devenv.config.messages import suggest
from devenv.config.model import ListenerRuleConfig, StackConfig


class Problem(NamedTuple):
    """A cross-field problem: the path it is reported at and what is wrong, for people."""

    path: Loc
    message: str


# Fargate task sizes: CPU units -> allowed memory (MiB), as ECS RegisterTaskDefinition enforces.
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}


def check_references(config: StackConfig) -> list[Problem]:
    """Every cross-field problem in ``config``, in section order; empty when it is consistent."""
    return [
        *_queues(config),
        *_event_buses(config),
        *_patterns(config),
        *_functions(config),
        *_function_refs(config),
        *_api(config),
        *_services(config),
        *_capacity_strategies(config),
        *_listener_rules(config),
        *_blue_green(config),
        *_interpolations(config),
        *_ports(config),
        *_seed(config),
        *_tour(config),
        *_edge(config),
    ]


def is_fifo(queue: str) -> bool:
    """SQS tells FIFO queues by their name."""
    return queue.endswith(".fifo")


def _missing(kind: str, name: str, defined: list[str], section: str) -> str:
    """'queue 'x' is not defined under queues' plus the closest defined name, if any."""
    message = f"{kind} '{name}' is not defined under {section}"
    if not defined:
        return message + f" (there are no {section})"
    best = suggest(name, defined)
    return message + (f", did you mean '{best}'?" if best else f" (defined: {', '.join(sorted(defined))})")


def _queue_problem(config: StackConfig, name: str, kind: str = "queue") -> str | None:
    if name in config.queues:
        return None
    return _missing(kind, name, list(config.queues), "queues")


def _queues(config: StackConfig) -> list[Problem]:
    problems = []
    for name, queue in config.queues.items():
        if queue.dlq is None:
            continue
        at = ("queues", name, "dlq")
        if queue.dlq == name:
            problems.append(Problem(at, f"queue '{name}' cannot be its own dead-letter queue"))
        elif (missing := _queue_problem(config, queue.dlq, "dead-letter queue")) is not None:
            problems.append(Problem(at, missing))
        elif is_fifo(name) and not is_fifo(queue.dlq):
            problems.append(Problem(at, f"'{name}' is a FIFO queue, so its dead-letter queue must be FIFO too; "
                                        f"'{queue.dlq}' is a standard queue"))
        elif not is_fifo(name) and is_fifo(queue.dlq):
            problems.append(Problem(at, f"'{name}' is a standard queue, so its dead-letter queue must be standard "
                                        f"too; '{queue.dlq}' is a FIFO queue"))
    return problems


def _event_buses(config: StackConfig) -> list[Problem]:
    problems = []
    for bus_name, bus in config.event_buses.items():
        for rule_name, rule in bus.rules.items():
            ids: dict[str, int] = {}
            for index, target in enumerate(rule.targets):
                at: Loc = ("event_buses", bus_name, "rules", rule_name, "targets", index)
                if target.queue is not None and (missing := _queue_problem(config, target.queue)):
                    problems.append(Problem(at + ("queue",), missing))
                if target.function is not None and target.function not in config.functions:
                    problems.append(Problem(at + ("function",), _missing(
                        "function", target.function, list(config.functions), "functions")))
                if target.dead_letter_queue is not None:
                    dlq_at = at + ("dead_letter_queue",)
                    if (missing := _queue_problem(config, target.dead_letter_queue, "dead-letter queue")):
                        problems.append(Problem(dlq_at, missing))
                    elif is_fifo(target.dead_letter_queue):
                        problems.append(Problem(dlq_at, f"an EventBridge dead-letter queue must be a standard "
                                                        f"queue; '{target.dead_letter_queue}' is FIFO"))
                if target.target_id in ids:
                    first = ids[target.target_id]
                    problems.append(Problem(at + (("id",) if target.id else ()), (
                        f"target id '{target.target_id}' is already used by targets[{first}] of this rule; "
                        f"EventBridge needs unique ids, so give one of them an 'id'")))
                else:
                    ids[target.target_id] = index
    return problems


def _patterns(config: StackConfig) -> list[Problem]:
    return [Problem(("event_buses", bus_name, "rules", rule_name, "pattern", *at), message)
            for bus_name, bus in config.event_buses.items()
            for rule_name, rule in bus.rules.items()
            for at, message in check_pattern(rule.pattern)]


# What a task's environment holds besides the service's own `environment` and `secrets`
# (devenv.compute.ecs: processes.py, containers.py; ecs_process.service_specs), for ${NAME}.
TASK_VARIABLES = ("TASK_IP", "PORT", "HOST", "ECS_TASK_ID", "ECS_SERVICE", "ECS_TASK_REVISION",
                  "ECS_CONTAINER_METADATA_URI_V4", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                  "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
_REFERENCE = re.compile(r"\$\{([^}]*)(\}?)")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _interpolations(config: StackConfig) -> list[Problem]:
    """``${NAME}`` in a service's command and environment is filled in from the task's
    environment; an unclosed one or an unknown name would pass on as literal text."""
    problems = []
    for name, service in config.services.items():
        known = sorted({*TASK_VARIABLES, *service.environment, *service.secrets})
        texts: list[tuple[Loc, str]] = [(("command", index), part) for index, part in enumerate(service.command or [])]
        texts += [(("environment", key), value) for key, value in service.environment.items()]
        for at, text in texts:
            message = _interpolation_problem(text, known)
            if message is not None:
                problems.append(Problem(("services", name, *at), message))
    return problems


def _interpolation_problem(text: str, known: list[str]) -> str | None:
    for found in _REFERENCE.finditer(text):
        variable, closed = found.group(1), found.group(2)
        if not closed:
            return (f"'${{' is not closed in {text!r}: write ${{NAME}} with a closing brace "
                    f"(known: {', '.join(known)})")
        if not _VARIABLE.fullmatch(variable) or variable not in known:
            best = suggest(variable, known)
            hint = f", did you mean ${{{best}}}?" if best else ""
            return f"unknown variable ${{{variable}}}{hint} (known: {', '.join(known)})"
    return None


def _function_refs(config: StackConfig) -> list[Problem]:
    problems = []
    for name, function in config.functions.items():
        problems.extend(_stack_refs(config, ("functions", name), function.secrets))
    return problems


def _functions(config: StackConfig) -> list[Problem]:
    problems = []
    for name, function in config.functions.items():
        at: Loc = ("functions", name)
        for index, event in enumerate(function.events):
            queue_at = at + ("events", index, "sqs", "queue")
            queue_name = event.sqs.queue
            if (missing := _queue_problem(config, queue_name)):
                problems.append(Problem(queue_at, missing))
                continue
            visibility = config.queues[queue_name].visibility_timeout
            if visibility < function.timeout:
                problems.append(Problem(queue_at, (
                    f"queue '{queue_name}' has visibility_timeout {visibility}, less than this function's "
                    f"timeout {_seconds(function.timeout)}; Lambda rejects the event source mapping "
                    f"(raise the queue's visibility_timeout to at least {_seconds(function.timeout)})")))
        if function.on_failure is not None and (missing := _queue_problem(config, function.on_failure.queue)):
            problems.append(Problem(at + ("on_failure", "queue"), missing))
        if function.dead_letter_queue is not None and (
                missing := _queue_problem(config, function.dead_letter_queue, "dead-letter queue")):
            problems.append(Problem(at + ("dead_letter_queue",), missing))
    return problems


def _api(config: StackConfig) -> list[Problem]:
    if config.api is None:
        return []
    problems = []
    seen: dict[tuple[str, str], int] = {}
    # API Gateway allows one path parameter name per position under a given parent resource.
    params: dict[str, tuple[str, int]] = {}
    for index, route in enumerate(config.api.routes):
        at: Loc = ("api", "routes", index)
        if route.function not in config.functions:
            problems.append(Problem(at + ("function",), _missing(
                "function", route.function, list(config.functions), "functions")))
        path = route.path.rstrip("/") or "/"
        key = (route.method, path)
        if key in seen:
            problems.append(Problem(at, f"route {route.method} {path} is already defined at api.routes[{seen[key]}]"))
            continue
        seen[key] = index
        parts = [p for p in path.split("/") if p]
        for depth, part in enumerate(parts):
            if not part.startswith("{"):
                continue
            parent = "/" + "/".join(parts[:depth])
            first = params.setdefault(parent, (part, index))
            if first[0] != part:
                problems.append(Problem(at + ("path",), (
                    f"path parameter {part} clashes with {first[0]} at the same position in "
                    f"api.routes[{first[1]}]; API Gateway allows one parameter name per position")))
                break
    return problems


def _stack_refs(config: StackConfig, at: Loc, refs: dict[str, str]) -> list[Problem]:
    """Values taken from the running stack need the part of the stack that provides them."""
    problems = []
    for variable, ref in refs.items():
        component = ref.split(".")[0]
        if component in ("postgres", "redis") and getattr(config.infra, component) is None:
            problems.append(Problem(at + ("secrets", variable), (
                f"'{ref}' needs infra.{component}, which is turned off (infra.{component}: false)")))
        elif component == "alb" and config.load_balancer is None:
            problems.append(Problem(at + ("secrets", variable), (
                f"'{ref}' needs a top-level 'load_balancer' section")))
        elif component == "api" and config.api is None:
            problems.append(Problem(at + ("secrets", variable), f"'{ref}' needs a top-level 'api' section"))
        elif component == "lambda" and not config.functions:
            problems.append(Problem(at + ("secrets", variable), f"'{ref}' needs at least one function"))
    return problems


def _services(config: StackConfig) -> list[Problem]:
    problems = []
    for name, service in config.services.items():
        at: Loc = ("services", name)
        allowed = FARGATE_MEMORY.get(service.cpu)
        if allowed is None:
            problems.append(Problem(at + ("cpu",), (
                f"Fargate has no task size with cpu {service.cpu}; use one of "
                f"{', '.join(str(c) for c in FARGATE_MEMORY)}")))
        elif service.memory not in allowed:
            problems.append(Problem(at + ("memory",), (
                f"Fargate allows memory {_memory_choices(allowed)} with cpu {service.cpu}, got {service.memory}")))
        problems.extend(_stack_refs(config, at, service.secrets))
        if config.runtime == "native" and service.command is None:
            problems.append(Problem(at, (
                f"service '{name}' has no 'command': the native runtime runs each task as a process "
                "(add `command:`, e.g. [python, -m, uvicorn, app:app, --host, \"${TASK_IP}\", --port, \"8000\"]; "
                "`image`/`build` alone are for runtime: docker)")))
        if config.runtime == "docker" and service.build is None and service.image is None:
            problems.append(Problem(at, (
                f"service '{name}' has neither 'build' nor 'image': the docker runtime runs each task as a "
                "container (add `build:` with its Dockerfile, or `image:`)")))
        lb = service.load_balancer
        if lb is None:
            continue
        if config.load_balancer is None:
            problems.append(Problem(at + ("load_balancer",), (
                f"service '{name}' is routed by the load balancer, but there is no top-level "
                "'load_balancer' section; add 'load_balancer: {}' to enable it")))
    return problems


def _capacity_strategies(config: StackConfig) -> list[Problem]:
    """A capacity provider strategy as ECS's CreateService takes it: each provider once, one
    base at most, and a weight above 0 somewhere (a weight of 0 places no task)."""
    problems = []
    for name, service in config.services.items():
        strategy = service.capacity_provider_strategy
        at: Loc = ("services", name, "capacity_provider_strategy")
        seen: dict[str, int] = {}
        based: int | None = None
        for index, item in enumerate(strategy):
            provider = item.capacity_provider
            if provider in seen:
                problems.append(Problem(at + (index, "capacity_provider"), (
                    f"capacity provider {provider} is already in this strategy "
                    f"(capacity_provider_strategy[{seen[provider]}]); name each provider once")))
            seen.setdefault(provider, index)
            if item.base > 0 and based is not None:
                first = strategy[based]
                problems.append(Problem(at + (index, "base"), (
                    f"only one capacity provider of a strategy can have a base; {first.capacity_provider} "
                    f"(capacity_provider_strategy[{based}]) already has base {first.base}")))
            elif item.base > 0:
                based = index
        if strategy and all(item.weight == 0 for item in strategy):
            problems.append(Problem(at, "at least one capacity provider of the strategy needs a weight above 0 "
                                        "(ECS places no task on a provider of weight 0 beyond its base)"))
    return problems


def _listener_rules(config: StackConfig) -> list[Problem]:
    """One listener: every rule's priority is unique (services' rules and the load balancer's
    own), and a forward action names target groups that exist (services with a load_balancer)."""
    problems = []
    rules: list[tuple[Loc, int]] = [(("services", name, "load_balancer", "priority"), service.load_balancer.priority)
                                    for name, service in config.services.items() if service.load_balancer]
    own = config.load_balancer.rules if config.load_balancer else []
    rules += [(("load_balancer", "rules", index, "priority"), rule.priority) for index, rule in enumerate(own)]
    first: dict[int, Loc] = {}
    for at, priority in rules:
        if priority in first:
            problems.append(Problem(at, (f"listener rule priority {priority} is already used by "
                                         f"{format_path(first[priority])}; priorities must be unique")))
        else:
            first[priority] = at
    groups = [name for name, service in config.services.items() if service.load_balancer]
    for index, rule in enumerate(own):
        for group in rule.forward or {}:
            if group not in groups:
                problems.append(Problem(("load_balancer", "rules", index, "forward", group),
                                        _missing("target group", group, groups, "services with a load_balancer")))
        problems += _group_stickiness(config, index, rule)
    return problems


def _group_stickiness(config: StackConfig, index: int, rule: ListenerRuleConfig) -> list[Problem]:
    """ELBv2 refuses a forward to several target groups, one of them with (target) stickiness,
    unless the rule has target group stickiness ("You must enable group stickiness before
    enabling target stickiness")."""
    sticky = rule.target_group_stickiness
    if rule.forward is None or len(rule.forward) < 2 or (sticky is not None and sticky.enabled):
        return []
    for group in rule.forward:
        service = config.services.get(group)
        balancer = service.load_balancer if service is not None else None
        if balancer is not None and balancer.stickiness is not None and balancer.stickiness.enabled:
            return [Problem(("load_balancer", "rules", index, "forward", group), (
                f"target group '{group}' has stickiness on, so a forward to several target groups needs "
                "target_group_stickiness (for example {duration: 3600}); ELBv2 refuses it otherwise"))]
    return []


def _blue_green(config: StackConfig) -> list[Problem]:
    """A CodeDeploy hook names a function of the stack."""
    problems = []
    functions = list(config.functions)
    for name, service in config.services.items():
        if service.blue_green is None:
            continue
        for event, function in service.blue_green.hooks.by_event().items():
            if function not in config.functions:
                problems.append(Problem(("services", name, "blue_green", "hooks", event),
                                        _missing("function", function, functions, "functions")))
    return problems


def _ports(config: StackConfig) -> list[Problem]:
    explicit: list[tuple[Loc, int | None]] = [
        (("infra", "postgres", "port"), config.infra.postgres.port if config.infra.postgres else None),
        (("infra", "redis", "port"), config.infra.redis.port if config.infra.redis else None),
        (("emulator", "port"), config.emulator.port),
        (("api", "port"), config.api.port if config.api else None),
        (("load_balancer", "port"), config.load_balancer.port if config.load_balancer else None),
        (("edge", "port"), config.edge.port if config.edge else None),
        *((("services", name, "blue_green", "test_listener_port"), service.blue_green.test_listener_port)
          for name, service in config.services.items() if service.blue_green is not None),
    ]
    problems = []
    owners: dict[int, Loc] = {}
    for at, port in explicit:
        if port is None:
            continue
        if port in owners:
            problems.append(Problem(at, (
                f"port {port} is also used by {format_path(owners[port])}; "
                f"{format_path(at)} and {format_path(owners[port])} must differ")))
        else:
            owners[port] = at
    return problems


def _edge(config: StackConfig) -> list[Problem]:
    if config.edge is None or config.api is not None:
        return []
    return [Problem(("edge",), "the edge forwards to the API Gateway stage: it needs an `api:` section")]


def _seed(config: StackConfig) -> list[Problem]:
    if config.seed is None:
        return []
    problems = []
    for field, what in (("migrations", "migrations run against"), ("data", "seed data loads into")):
        if getattr(config.seed, field) is not None and config.infra.postgres is None:
            problems.append(Problem(("seed", field), f"{what} PostgreSQL, but infra.postgres is turned off"))
    for index, item in enumerate(config.seed.s3):
        if item.bucket not in config.buckets:
            problems.append(Problem(("seed", "s3", index, "bucket"), _missing(
                "bucket", item.bucket, list(config.buckets), "buckets")))
    return problems


def _seconds(value: float) -> str:
    return f"{int(value) if float(value).is_integer() else value}"


def _memory_choices(allowed: tuple[int, ...]) -> str:
    if len(allowed) <= 3:
        return ", ".join(str(m) for m in allowed)
    step = allowed[1] - allowed[0]
    return f"{allowed[0]} to {allowed[-1]} in steps of {step}"


# What a tour step's `at` names: its kind -> (the names defined, the section defining them).
def _hops(config: StackConfig) -> dict[str, tuple[list[str], str]]:
    return {"function": (list(config.functions), "functions"), "service": (list(config.services), "services"),
            "bus": (list(config.event_buses), "event_buses"), "queue": (list(config.queues), "queues")}


def _tour(config: StackConfig) -> list[Problem]:
    if config.tour is None:
        return []
    problems = []
    if config.api is None:
        problems.append(Problem(("tour", "request"), "the tour sends its request to the API: define `api` first"))
    hops = _hops(config)
    for index, step in enumerate(config.tour.steps):
        at: Loc = ("tour", "steps", index, "at")
        kind, _, name = step.at.partition(" ")
        if kind == "api" and config.api is None:
            problems.append(Problem(at, "'api' is not defined (there is no `api` section)"))
        elif kind == "alb" and config.load_balancer is None:
            problems.append(Problem(at, "'alb' is not defined (there is no `load_balancer` section)"))
        elif kind in hops and name not in hops[kind][0]:
            problems.append(Problem(at, _missing(kind, name, *hops[kind])))
    return problems


def check_warnings(config: StackConfig) -> list[Problem]:
    """What AWS accepts but works badly: queues whose dead-letter queues lead back to them."""
    return _dlq_cycles(config)


def _dlq_cycles(config: StackConfig) -> list[Problem]:
    """A message that fails in one queue of a cycle moves to the next and back, forever; SQS
    accepts the redrive policies. Reported once per cycle, at its first queue in the file."""
    problems, seen = [], set()
    for start in config.queues:
        path, at = [], start
        while at in config.queues and at not in path and at not in seen:
            path.append(at)
            at = config.queues[at].dlq
        seen.update(path)
        if at in path and len(path[path.index(at):]) > 1:
            cycle = path[path.index(at):]
            problems.append(Problem(("queues", cycle[0], "dlq"), (
                f"dead-letter queues form a cycle: {' -> '.join([*cycle, cycle[0]])}; a message that fails "
                "keeps moving between them and never settles in a dead-letter queue (SQS accepts this)")))
    return problems

