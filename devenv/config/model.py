"""The typed, frozen model of devenv.yaml.

Everything devenv knows about a stack comes from these objects: YAML and the environment are
parsed into them at the edge (see ``loader``) and no raw dict travels further. Field-level
rules (types, ranges, name formats) live here; rules that relate fields to each other
(references, port clashes) live in ``references``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator,
                      model_validator)

Port = Annotated[int, Field(ge=1, le=65535)]
# ECS runs at most 5,000 tasks per service (its service quota).
TASKS_PER_SERVICE = 5000
TaskCount = Annotated[int, Field(ge=0, le=TASKS_PER_SERVICE)]
Seconds = Annotated[float, Field(ge=0)]

# Resource names, as AWS constrains them.
# SQS counts the ".fifo" suffix in its 80-character limit.
QueueName = Annotated[str, StringConstraints(max_length=80, pattern=r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")]
BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
BusName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._\-/]{1,256}$")]
RuleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
FunctionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ServiceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,255}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]

EmulatorKind = Literal["moto", "localstack", "ministack"]
RuntimeKind = Literal["native", "docker"]
# The Python runtimes Lambda supports today (python3.9 was deprecated on 2025-12-15).
LambdaRuntime = Literal["python3.10", "python3.11", "python3.12", "python3.13", "python3.14"]
LAMBDA_PYTHON_RUNTIMES: tuple[str, ...] = get_args(LambdaRuntime)
DEPRECATED_RUNTIMES: tuple[str, ...] = ("python2.7", "python3.6", "python3.7", "python3.8", "python3.9")
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"]

# Values a service may take from the running stack as secrets (see ServiceConfig.secrets).
# Values a function or service may take from the running stack (its `secrets`): the local
# stand-ins for what production injects from Secrets Manager, SSM or the service's wiring.
SecretRef = Literal["postgres.url", "postgres.password", "redis.url", "redis.password", "alb.url",
                    "aws.endpoint", "lambda.endpoint", "api.url"]
STACK_SECRETS: tuple[str, ...] = get_args(SecretRef)


class Model(BaseModel):
    """Base of every config object: immutable, and unknown keys are errors. Strict: YAML 1.1
    reads `yes`/`no`/`on`/`off` as booleans, which lax validation would take as 1 and 0 for a
    number; and no number is infinite or NaN (`.inf`, `.nan`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _null_is_empty(value: Any) -> Any:
    """Lets ``name:`` (YAML null) stand for a resource with every default."""
    return {} if value is None else value


def _false_is_off(value: Any) -> Any:
    """Lets ``postgres: false`` switch a component off; ``postgres:`` (null) keeps its defaults."""
    if value is False:
        return None
    return _null_is_empty(value)


def _upper(value: Any) -> Any:
    """HTTP methods may be written in any case."""
    return value.upper() if isinstance(value, str) else value


def _scalars_to_str(value: Any) -> Any:
    """Environment values may be written as YAML numbers or booleans; they become strings."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, (int, float)):
            out[key] = str(item)
        else:
            out[key] = item
    return out


# ---------------------------------------------------------------- infra and emulator


class PostgresConfig(Model):
    """A real PostgreSQL server standing in for Aurora PostgreSQL."""

    version: str | None = Field(None, description="major version wanted, e.g. '15'; any if unset")
    database: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")] = "app"
    user: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")] = "devenv"
    port: Port | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


class RedisConfig(Model):
    """A real Redis server standing in for ElastiCache Redis."""

    port: Port | None = None


class InfraConfig(Model):
    """Real servers devenv runs beside the emulator; ``false`` turns one off."""

    postgres: PostgresConfig | None = PostgresConfig()
    redis: RedisConfig | None = RedisConfig()

    _defaults = field_validator("postgres", "redis", mode="before")(classmethod(lambda cls, v: _false_is_off(v)))


def _web_origin(origin: str) -> str:
    if not re.fullmatch(r"https?://[^/\s?#@]+/?", origin.strip()):
        raise ValueError(f"{origin!r} is not an origin: expected scheme://host[:port], for example http://localhost:3000")
    return origin.strip().rstrip("/").lower()


WebOrigin = Annotated[str, AfterValidator(_web_origin)]


class EmulatorConfig(Model):
    """The AWS emulator serving the managed plane (SQS, EventBridge, S3)."""

    kind: EmulatorKind = "moto"
    port: Port | None = None
    image: str | None = None  # runtime: docker; default per kind (see infra.emulator)
    version: str | None = None
    # Web pages (besides loopback ones) allowed to call the emulator from a browser (CORS).
    cors_origins: list[WebOrigin] = []


# ---------------------------------------------------------------- managed plane


class BucketConfig(Model):
    versioning: bool = False


class QueueConfig(Model):
    """An SQS queue. ``dlq`` and ``max_receive_count`` together make its redrive policy."""

    visibility_timeout: Annotated[int, Field(ge=0, le=43200)] = 30
    message_retention: Annotated[int, Field(ge=60, le=1209600)] = 345600
    delay: Annotated[int, Field(ge=0, le=900)] = 0
    receive_wait_time: Annotated[int, Field(ge=0, le=20)] = 0
    max_message_size: Annotated[int, Field(ge=1024, le=262144)] = 262144
    dlq: QueueName | None = None
    max_receive_count: Annotated[int, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _redrive_complete(self) -> "QueueConfig":
        if (self.dlq is None) != (self.max_receive_count is None):
            missing = "max_receive_count" if self.max_receive_count is None else "dlq"
            raise ValueError(f"dlq and max_receive_count go together: {missing} is missing")
        return self


class TargetConfig(Model):
    """Where a rule sends matching events: exactly one of a queue or a function."""

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    queue: QueueName | None = None
    function: FunctionName | None = None
    dead_letter_queue: QueueName | None = None
    maximum_retry_attempts: Annotated[int, Field(ge=0, le=185)] = 185
    maximum_event_age: Annotated[int, Field(ge=60, le=86400)] = 86400

    @model_validator(mode="after")
    def _one_destination(self) -> "TargetConfig":
        if (self.queue is None) == (self.function is None):
            raise ValueError("a target names exactly one of 'queue' or 'function'")
        return self

    @property
    def target_id(self) -> str:
        return self.id or (f"queue-{self.queue}" if self.queue else f"function-{self.function}")


class RuleConfig(Model):
    description: str | None = None
    pattern: dict[str, Any]
    enabled: bool = True
    targets: Annotated[list[TargetConfig], Field(min_length=1, max_length=5)]  # EventBridge: 5 per rule
    # Checked against EventBridge's grammar in references (event_pattern.check_pattern), where
    # a problem is reported at its own line inside the pattern.


class BusConfig(Model):
    rules: dict[RuleName, RuleConfig] = {}

    _defaults = field_validator("rules", mode="before")(classmethod(lambda cls, v: _null_is_empty(v)))


# ---------------------------------------------------------------- compute plane: Lambda and API Gateway


class SqsEventSourceConfig(Model):
    """An SQS event source mapping feeding a function."""

    queue: QueueName
    batch_size: Annotated[int, Field(ge=1, le=10000)] = 10
    maximum_batching_window: Annotated[float, Field(ge=0, le=300)] = 0
    report_batch_item_failures: bool = False
    maximum_concurrency: Annotated[int, Field(ge=2, le=1000)] | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _batching(self) -> "SqsEventSourceConfig":
        # Lambda rejects these mappings with the same rules.
        if self.queue.endswith(".fifo") and self.batch_size > 10:
            raise ValueError(f"batch_size is at most 10 for a FIFO queue, got {self.batch_size}")
        if self.batch_size > 10 and self.maximum_batching_window < 1:
            raise ValueError("a batch_size above 10 needs maximum_batching_window of at least 1 second")
        return self


class EventSourceConfig(Model):
    sqs: SqsEventSourceConfig


class DestinationConfig(Model):
    queue: QueueName


class FunctionConfig(Model):
    """A Lambda function run by devenv's Lambda runtime with the official awslambdaric."""

    handler: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./-]+\.[A-Za-z_][A-Za-z0-9_]*$")]
    code: str
    runtime: LambdaRuntime = "python3.11"
    memory: Annotated[int, Field(ge=128, le=10240)] = 128
    timeout: Annotated[float, Field(gt=0, le=900)] = 3
    environment: dict[EnvName, str] = {}
    secrets: dict[EnvName, SecretRef] = {}
    reserved_concurrency: Annotated[int, Field(ge=0)] | None = None
    events: list[EventSourceConfig] = []
    maximum_retry_attempts: Annotated[int, Field(ge=0, le=2)] = 2
    on_failure: DestinationConfig | None = None
    dead_letter_queue: QueueName | None = None
    # Folders laid out as a layer's zip (python/...), on the path as /opt/python is; a
    # requirements.txt in one is installed for it (as `sam build` builds a layer).
    layers: Annotated[list[str], Field(max_length=5)] = []  # Lambda: at most 5 layers

    _env = field_validator("environment", mode="before")(classmethod(lambda cls, v: _scalars_to_str(v)))

    @field_validator("runtime", mode="before")
    @classmethod
    def _supported_runtime(cls, value: Any) -> Any:
        if value in DEPRECATED_RUNTIMES:
            raise ValueError(f"{value} is deprecated on AWS Lambda; supported: {', '.join(LAMBDA_PYTHON_RUNTIMES)}")
        return value


class RouteConfig(Model):
    method: HttpMethod
    path: str
    function: FunctionName

    _method = field_validator("method", mode="before")(classmethod(lambda cls, v: _upper(v)))

    @field_validator("path")
    @classmethod
    def _path_shape(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("a route path starts with '/'")
        parts = [p for p in value.split("/") if p]
        for index, part in enumerate(parts):
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                if name.endswith("+") and index != len(parts) - 1:
                    raise ValueError("a greedy parameter such as {proxy+} must be the last segment")
                if not re.fullmatch(r"[A-Za-z0-9_]+\+?", name):
                    raise ValueError(f"bad path parameter '{part}'")
            elif "{" in part or "}" in part:
                raise ValueError(f"a path parameter takes a whole segment, not '{part}'")
        return value


class ApiConfig(Model):
    """API Gateway REST API with Lambda proxy integrations (payload format 1.0)."""

    name: str = "api"
    stage: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,128}$")] = "local"
    port: Port | None = None
    integration_timeout: Annotated[float, Field(gt=0, le=300)] = 29
    binary_media_types: list[str] = []
    routes: list[RouteConfig] = []


# ---------------------------------------------------------------- compute plane: ECS and the ALB


class AwslogsOptions(Model):
    """The awslogs log driver's options, under their AWS names (as a task definition's
    ``logConfiguration.options`` holds them)."""

    group: Annotated[str, StringConstraints(pattern=r"^[.\-_/#A-Za-z0-9]{1,512}$")] = Field(alias="awslogs-group")
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] | None = Field(
        None, alias="awslogs-region")
    # Required with Fargate; the stream is <prefix>/<container name>/<task id>.
    stream_prefix: Annotated[str, StringConstraints(pattern=r"^[^:*]{1,400}$")] = Field(alias="awslogs-stream-prefix")
    create_group: Literal["true", "false"] = Field("false", alias="awslogs-create-group")
    datetime_format: Annotated[str, StringConstraints(min_length=1)] | None = Field(None, alias="awslogs-datetime-format")
    multiline_pattern: Annotated[str, StringConstraints(min_length=1)] | None = Field(
        None, alias="awslogs-multiline-pattern")
    mode: Literal["blocking", "non-blocking"] = "blocking"
    max_buffer_size: Annotated[str, StringConstraints(pattern=r"^\d+[kmg]?$")] | None = Field(None, alias="max-buffer-size")

    @field_validator("create_group", mode="before")
    @classmethod
    def _bool_as_text(cls, value: Any) -> Any:
        return str(value).lower() if isinstance(value, bool) else value

    @field_validator("multiline_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_way_to_join_lines(self) -> "AwslogsOptions":
        if self.datetime_format and self.multiline_pattern:
            raise ValueError("give awslogs-datetime-format or awslogs-multiline-pattern, not both "
                             "(the awslogs driver refuses both)")
        return self


class LogConfiguration(Model):
    """A container's ``logConfiguration``: where its output goes (only awslogs is run locally)."""

    log_driver: Literal["awslogs"]
    options: AwslogsOptions


class HealthCheckConfig(Model):
    """An ECS container health check; defaults are ECS's."""

    command: Annotated[list[str], Field(min_length=2)]
    interval: Annotated[float, Field(gt=0, le=300)] = 30
    timeout: Annotated[float, Field(gt=0, le=120)] = 5
    retries: Annotated[int, Field(ge=1, le=10)] = 3
    start_period: Annotated[float, Field(ge=0, le=300)] = 0

    @field_validator("command")
    @classmethod
    def _command_form(cls, value: list[str]) -> list[str]:
        if value[0] not in ("CMD", "CMD-SHELL"):
            raise ValueError("a health check command starts with 'CMD' or 'CMD-SHELL'")
        return value


class CircuitBreakerConfig(Model):
    enable: bool = False
    rollback: bool = False


class DeploymentConfig(Model):
    minimum_healthy_percent: Annotated[int, Field(ge=0, le=100)] = 100
    maximum_percent: Annotated[int, Field(ge=100, le=200)] = 200
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()


class AutoscalingConfig(Model):
    """Target tracking on the service's average CPU."""

    min: TaskCount
    max: Annotated[int, Field(ge=1, le=TASKS_PER_SERVICE)]
    target_cpu: Annotated[float, Field(gt=0, le=100)] = 70
    scale_in_cooldown: Seconds = 300
    scale_out_cooldown: Seconds = 300

    @model_validator(mode="after")
    def _bounds(self) -> "AutoscalingConfig":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class TargetGroupHealthCheckConfig(Model):
    """A target group's health check. ``path`` and ``matcher`` default by the target group's
    protocol version (``ServiceLoadBalancerConfig``): ``/`` and HTTP ``200``, or for ``GRPC``
    the method ``/AWS.ALB/healthcheck`` and gRPC code ``12``."""

    path: str = "/"
    interval: Annotated[float, Field(gt=0, le=300)] = 30
    timeout: Annotated[float, Field(gt=0, le=120)] = 5
    healthy_threshold: Annotated[int, Field(ge=2, le=10)] = 5
    unhealthy_threshold: Annotated[int, Field(ge=2, le=10)] = 2
    matcher: str = "200"

    @field_validator("matcher", mode="before")
    @classmethod
    def _matcher_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# ELBv2's target group ProtocolVersion: how the load balancer talks to the targets.
ProtocolVersion = Literal["HTTP1", "HTTP2", "GRPC"]
# Matcher.HttpCode (for HTTP1 and HTTP2) and Matcher.GrpcCode (for GRPC), as ELBv2 bounds them.
HTTP_CODES = (200, 499)
GRPC_CODES = (0, 99)
GRPC_HEALTH_CHECK_PATH = "/AWS.ALB/healthcheck"
GRPC_HEALTH_CHECK_CODES = "12"  # UNIMPLEMENTED: a gRPC server without that method is up
_GRPC_METHOD = re.compile(r"^/[A-Za-z0-9_.]+/[A-Za-z0-9_]+$")


def code_ranges(text: str, bounds: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """A health check matcher's codes: ``"200"``, ``"200,204"``, ``"200-299"`` or a mix, each
    within ``bounds``. Raises ValueError for anything else."""
    low_bound, high_bound = bounds
    ranges = []
    for item in text.split(","):
        item = item.strip()
        low_text, dash, high_text = item.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if dash else low
        except ValueError:
            example = "200-299" if low_bound >= 200 else "0-5"
            raise ValueError(f"matcher {text!r}: {item!r} is not a code or a range like {example}") from None
        if not (low_bound <= low <= high <= high_bound):
            raise ValueError(f"matcher {text!r}: {item!r} must lie between {low_bound} and {high_bound}, "
                             "low to high")
        ranges.append((low, high))
    return tuple(ranges)


# ---------------------------------------------------------------- the internal ALB's listener rules
# As ELBv2 validates them (Elastic Load Balancing user guide, "Condition types for listener
# rules", "Action types for listener rules"; API reference: *ConditionConfig,
# FixedResponseActionConfig, RedirectActionConfig, TargetGroupTuple).

MAX_VALUES_PER_CONDITION = 3  # "up to three match evaluations per condition"
MAX_VALUES_PER_RULE = 5  # "up to five match evaluations per rule"
MAX_WILDCARDS_PER_RULE = 5
_PATH = re.compile(r"^[A-Za-z0-9_\-.$/~\"'@:+&*?]{1,128}$")
_HOST = re.compile(r"^[A-Za-z0-9\-.*?]{1,128}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,40}$")  # an RFC 7230 token
_METHOD = re.compile(r"^[A-Z_\-]{1,40}$")
_VISIBLE = re.compile(r"^[\x20-\x7e]{1,128}$")  # rules see visible ASCII only
_FORMATS = {"paths": (_PATH, "path pattern (up to 128 of A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & * ?)"),
            "methods": (_METHOD, "request method (up to 40 of A-Z - _; compared case-sensitively)")}


def _values(value: Any) -> Any:
    """One value may be written without its list; YAML numbers are text."""
    def text(item: Any) -> Any:
        return str(item) if isinstance(item, (int, float)) and not isinstance(item, bool) else item
    if isinstance(value, list):
        return [text(item) for item in value]
    return [text(value)] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value


def _each(values: list[str], pattern: re.Pattern[str], what: str) -> list[str]:
    if len(values) > MAX_VALUES_PER_CONDITION:
        raise ValueError(f"{len(values)} values; AWS allows {MAX_VALUES_PER_CONDITION} per condition")
    for value in values:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}")
    return values


def _wildcards(value: str, *, escapes: bool = False) -> int:
    if escapes:
        value = value.replace("\\*", "").replace("\\?", "")
    return value.count("*") + value.count("?")


def _named_condition(values: list[str]) -> list[str]:
    if not values:
        raise ValueError("give at least one value")
    return _each(values, _VISIBLE, "value (1-128 visible ASCII characters)")


NamedCondition = Annotated[list[str], AfterValidator(_named_condition)]  # one header's or query key's values


class ListenerConditions(Model):
    """A listener rule's conditions: all given must match; a condition with several values is
    met when one of them matches. ``headers`` and ``query`` are one condition per name/key."""

    paths: list[str] = []
    hosts: list[str] = []
    headers: dict[str, NamedCondition] = {}
    methods: list[str] = []
    query: dict[str, NamedCondition] = {}
    source_ips: list[str] = []

    @field_validator("paths", "hosts", "methods", "source_ips", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _values(value)

    @field_validator("headers", "query", mode="before")
    @classmethod
    def _named_values(cls, value: Any) -> Any:
        return {str(key): _values(item) for key, item in value.items()} if isinstance(value, dict) else value

    @field_validator("paths", "methods")
    @classmethod
    def _formats(cls, value: list[str], info: ValidationInfo) -> list[str]:
        pattern, what = _FORMATS[info.field_name or ""]
        return _each(value, pattern, what)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in _each(value, _HOST, "host name (up to 128 of A-Z a-z 0-9 - . * ?)"):
            if "." not in host or not host.rpartition(".")[2].isalpha():
                raise ValueError(f"{host!r}: a host condition needs a '.', with only letters after the last one")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, values in value.items():
            _each([name], _HEADER_NAME, "header name (an HTTP token of up to 40 characters)")
            if name.lower() == "host":
                raise ValueError("the Host header is matched by 'hosts', not 'headers'")
        return value



    @field_validator("query")
    @classmethod
    def _query(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        _each(list(value), _VISIBLE, "query-string key (1-128 visible ASCII characters)")
        return value

    @field_validator("source_ips")
    @classmethod
    def _source_ips(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IPv4 or IPv6 CIDR block (e.g. 10.0.0.0/16)") from None
            if "/" not in cidr:
                raise ValueError(f"{cidr!r}: give a CIDR block, e.g. {cidr}/32")
        return value

    @model_validator(mode="after")
    def _rule_limits(self) -> "ListenerConditions":
        conditions = {"paths": self.paths, "hosts": self.hosts, "methods": self.methods,
                      "source_ips": self.source_ips,
                      **{f"headers.{name}": values for name, values in self.headers.items()},
                      **{f"query.{key}": values for key, values in self.query.items()}}
        if not any(conditions.values()):
            raise ValueError("a listener rule needs at least one condition: paths, hosts, headers, methods, "
                             "query or source_ips")
        total = sum(map(len, conditions.values()))
        if total > MAX_VALUES_PER_RULE:
            raise ValueError(f"the rule's conditions have {total} values in all; AWS allows {MAX_VALUES_PER_RULE} "
                             "per rule")
        wildcards = (sum(_wildcards(v) for v in [*self.paths, *self.hosts])
                     + sum(_wildcards(v) for values in self.headers.values() for v in values)
                     + sum(_wildcards(v, escapes=True) for k, values in self.query.items() for v in [k, *values]))
        if wildcards > MAX_WILDCARDS_PER_RULE:
            raise ValueError(f"the rule's conditions have {wildcards} wildcards (* and ?); AWS allows "
                             f"{MAX_WILDCARDS_PER_RULE} per rule")
        return self


class FixedResponseConfig(Model):
    status_code: str
    content_type: Literal["text/plain", "text/css", "text/html", "application/javascript",
                          "application/json"] = "text/plain"
    message_body: Annotated[str, StringConstraints(max_length=1024)] = ""

    @field_validator("status_code", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(text, str) and not re.fullmatch(r"[245]\d\d", text):
            raise ValueError(f"{text!r} is not a 2XX, 4XX or 5XX status code")
        return text


class RedirectConfig(Model):
    """protocol://host:port/path?query; each part may reuse the request's (``#{host}``...)."""

    status_code: Literal["HTTP_301", "HTTP_302"]
    protocol: Literal["HTTP", "HTTPS", "#{protocol}"] = "#{protocol}"
    host: Annotated[str, StringConstraints(min_length=1, max_length=128)] = "#{host}"
    port: Annotated[str, StringConstraints(pattern=r"^(#\{port\}|[1-9][0-9]{0,4})$")] = "#{port}"
    path: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^/")] = "/#{path}"
    query: Annotated[str, StringConstraints(max_length=128)] = "#{query}"

    _port = field_validator("port", mode="before")(classmethod(
        lambda cls, v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v))

    @model_validator(mode="after")
    def _not_a_loop(self) -> "RedirectConfig":
        if self.port != "#{port}" and not 1 <= int(self.port) <= 65535:
            raise ValueError(f"port {self.port} is not between 1 and 65535")
        if (self.protocol, self.host, self.port, self.path) == ("#{protocol}", "#{host}", "#{port}", "/#{path}"):
            raise ValueError("a redirect must change at least one of protocol, host, port or path "
                             "(else it would redirect to itself)")
        return self


class TargetGroupStickinessConfig(Model):
    """A forward action's target group stickiness (ELBv2's TargetGroupStickinessConfig): the
    AWSALBTG cookie holds a client to one of the action's target groups."""

    enabled: bool = True
    duration: Annotated[int, Field(ge=1, le=604800)] | None = None  # seconds; required when enabled

    @model_validator(mode="after")
    def _duration_when_enabled(self) -> "TargetGroupStickinessConfig":
        if self.enabled and self.duration is None:
            raise ValueError("target group stickiness needs a duration when enabled: 1 to 604800 seconds "
                             "(ELBv2's DurationSeconds), for example {duration: 3600}")
        return self


class ListenerRuleConfig(ListenerConditions):
    """A listener rule of its own: conditions and exactly one action."""

    priority: Annotated[int, Field(ge=1, le=50000)]
    forward: dict[ServiceName, Annotated[int, Field(ge=0, le=999)]] | None = None
    target_group_stickiness: TargetGroupStickinessConfig | None = None  # of the forward action
    fixed_response: FixedResponseConfig | None = None
    redirect: RedirectConfig | None = None

    @model_validator(mode="after")
    def _one_action(self) -> "ListenerRuleConfig":
        given = [name for name in ("forward", "fixed_response", "redirect") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a rule needs exactly one action of forward, fixed_response or redirect"
                             + (f" (it has {' and '.join(given)})" if given else ""))
        if self.forward is not None and not 1 <= len(self.forward) <= 5:
            raise ValueError("forward names 1 to 5 target groups (services with a load_balancer), each with "
                             "a weight 0-999")
        if self.target_group_stickiness is not None and self.forward is None:
            raise ValueError(f"target_group_stickiness goes with a forward action, not {given[0]}")
        return self


class StickinessConfig(Model):
    """Duration-based sticky sessions: the AWSALB cookie holds a client to one target."""

    enabled: bool = True
    duration: Annotated[int, Field(ge=1, le=604800)] = 86400  # seconds


class ServiceLoadBalancerConfig(ListenerConditions):
    """How the internal ALB routes to a service: a listener rule (its conditions, forwarding
    to the service) and its target group."""

    priority: Annotated[int, Field(ge=1, le=50000)]
    # How the load balancer talks to the tasks: HTTP/1.1, HTTP/2 (h2c) or gRPC (over h2c).
    protocol_version: ProtocolVersion = "HTTP1"
    health_check: Annotated[TargetGroupHealthCheckConfig, Field(validate_default=True)] = \
        TargetGroupHealthCheckConfig()
    deregistration_delay: Annotated[float, Field(ge=0, le=3600)] = 300
    # the target group's load_balancing.algorithm.type and duration-based stickiness (lb_cookie)
    algorithm: Literal["round_robin", "least_outstanding_requests"] = "round_robin"
    # slow_start.duration_seconds: a newly healthy target's share ramps up over this long (0: off)
    slow_start: Annotated[int, Field(ge=0, le=900)] = 0
    stickiness: StickinessConfig | None = None

    @field_validator("slow_start")
    @classmethod
    def _slow_start(cls, seconds: int, info: ValidationInfo) -> int:
        """As ELBv2 takes slow_start.duration_seconds: 0 (off) or 30-900 seconds, and not with
        the least_outstanding_requests algorithm."""
        if seconds == 0:
            return seconds
        if seconds < 30:
            raise ValueError(f"{seconds} is not a slow start duration: 0 (off) or 30 to 900 seconds")
        if info.data.get("algorithm") == "least_outstanding_requests":
            raise ValueError("slow start cannot be combined with the least_outstanding_requests algorithm "
                             "(AWS refuses both together); use round_robin or slow_start: 0")
        return seconds

    @field_validator("health_check")
    @classmethod
    def _health_check_for_protocol(cls, check: TargetGroupHealthCheckConfig,
                                   info: ValidationInfo) -> TargetGroupHealthCheckConfig:
        """The matcher's codes are gRPC codes (0-99) for a GRPC target group, else HTTP ones
        (200-499); a GRPC target group's check calls a method ``/package.service/method``."""
        grpc = info.data.get("protocol_version") == "GRPC"
        if grpc:
            defaults = {name: value for name, value in (("path", GRPC_HEALTH_CHECK_PATH),
                                                        ("matcher", GRPC_HEALTH_CHECK_CODES))
                        if name not in check.model_fields_set}
            check = check.model_copy(update=defaults) if defaults else check
            if not _GRPC_METHOD.fullmatch(check.path):
                raise ValueError(f"path {check.path!r}: a GRPC target group's health check calls a gRPC method, "
                                 "written /package.service/method (default /AWS.ALB/healthcheck)")
        try:
            code_ranges(check.matcher, GRPC_CODES if grpc else HTTP_CODES)
        except ValueError as error:
            kind = "gRPC status codes (GrpcCode)" if grpc else "HTTP status codes (HttpCode)"
            owner = "a GRPC" if grpc else "an HTTP1 or HTTP2"
            raise ValueError(f"{error}; {owner} target group's matcher takes {kind}") from None
        return check


CapacityProvider = Literal["FARGATE", "FARGATE_SPOT"]
# ECS: a strategy holds at most 20 capacity providers (CapacityProviderStrategyItem).
STRATEGY_ITEMS = 20


class CapacityProviderStrategyItem(Model):
    """One capacity provider of a service's strategy, as ECS takes it: ``base`` tasks at least
    on this provider (one provider of a strategy may have a base), then tasks beyond every
    base split by ``weight`` (0 places none)."""

    capacity_provider: CapacityProvider
    weight: Annotated[int, Field(ge=0, le=1000)] = 0
    base: Annotated[int, Field(ge=0, le=100000)] = 0


# ---------------------------------------------------------------- CodeDeploy blue/green (ECS)
# As CodeDeploy names and bounds them (CodeDeploy user guide, "Deployment configurations on an
# Amazon ECS compute platform", "AppSpec 'hooks' section for an Amazon ECS deployment").

# The predefined ECS deployment configurations: (kind, percentage, interval in minutes).
CODEDEPLOY_ECS_CONFIGS: dict[str, tuple[str, int, int]] = {
    "CodeDeployDefault.ECSAllAtOnce": ("AllAtOnce", 100, 0),
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": ("TimeBasedLinear", 10, 1),
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": ("TimeBasedLinear", 10, 3),
    "CodeDeployDefault.ECSCanary10Percent5Minutes": ("TimeBasedCanary", 10, 5),
    "CodeDeployDefault.ECSCanary10Percent15Minutes": ("TimeBasedCanary", 10, 15),
}
CodeDeployConfigName = Literal["CodeDeployDefault.ECSAllAtOnce", "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
                               "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
                               "CodeDeployDefault.ECSCanary10Percent5Minutes",
                               "CodeDeployDefault.ECSCanary10Percent15Minutes"]
# The lifecycle events of an ECS deployment that take a hook, in the order they run.
HOOK_EVENTS: tuple[str, ...] = ("BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic",
                                "AfterAllowTraffic")


class TrafficRoutingConfig(Model):
    """A custom deployment configuration (CreateDeploymentConfig's trafficRoutingConfig):
    ``percentage`` of the traffic first, then (canary) the rest after ``interval`` minutes,
    or (linear) another ``percentage`` every ``interval`` minutes."""

    type: Literal["TimeBasedCanary", "TimeBasedLinear"]
    percentage: Annotated[int, Field(ge=1, le=99)]
    interval: Annotated[int, Field(ge=1, le=2880)]  # minutes


class HooksConfig(Model):
    """The AppSpec's hooks: a function of the stack per lifecycle event."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    before_install: FunctionName | None = Field(None, alias="BeforeInstall")
    after_install: FunctionName | None = Field(None, alias="AfterInstall")
    after_allow_test_traffic: FunctionName | None = Field(None, alias="AfterAllowTestTraffic")
    before_allow_traffic: FunctionName | None = Field(None, alias="BeforeAllowTraffic")
    after_allow_traffic: FunctionName | None = Field(None, alias="AfterAllowTraffic")

    def by_event(self) -> dict[str, str]:
        """Lifecycle event name -> function, in the order the events run, hooked ones only."""
        values = (self.before_install, self.after_install, self.after_allow_test_traffic,
                  self.before_allow_traffic, self.after_allow_traffic)
        return {event: function for event, function in zip(HOOK_EVENTS, values) if function is not None}


class AutoRollbackConfig(Model):
    """When CodeDeploy rolls back by itself: a failed deployment (a hook that failed or timed
    out, a replacement task set that could not start), and green tasks failing their health
    checks during the deployment."""

    on_failure: bool = True
    on_unhealthy: bool = True


class BlueGreenConfig(Model):
    """How CodeDeploy deploys a service whose ``deployment_controller`` is CODE_DEPLOY."""

    deployment_config: CodeDeployConfigName = "CodeDeployDefault.ECSAllAtOnce"
    traffic_routing: TrafficRoutingConfig | None = None  # a custom configuration, in place of deployment_config
    # Every CodeDeploy wait (the shift intervals, the termination wait, a hook's hour) times
    # this: 0.01 runs a 5-minute canary interval in 3 seconds.
    time_scale: Annotated[float, Field(gt=0, le=1)] = 1.0
    test_listener_port: Port | None = None
    hooks: HooksConfig = HooksConfig()
    hook_timeout: Annotated[float, Field(gt=0, le=3600)] = 3600  # seconds a hook has to report (before time_scale)
    termination_wait: Annotated[int, Field(ge=0, le=2880)] = 0  # minutes blue is kept after the shift (AWS's 0-2880)
    auto_rollback: AutoRollbackConfig = AutoRollbackConfig()

    _hooks = field_validator("hooks", mode="before")(classmethod(lambda cls, v: _null_is_empty(v)))

    @model_validator(mode="after")
    def _one_configuration(self) -> "BlueGreenConfig":
        if self.traffic_routing is not None and "deployment_config" in self.model_fields_set:
            raise ValueError("give either deployment_config (a CodeDeployDefault.ECS* name) or traffic_routing "
                             "(a custom canary or linear shift), not both")
        return self

    @property
    def config_name(self) -> str:
        """The deployment configuration's name, as GetDeployment shows it."""
        routing = self.traffic_routing
        if routing is None:
            return self.deployment_config
        kind = "Canary" if routing.type == "TimeBasedCanary" else "Linear"
        every = "Every" if kind == "Linear" else ""
        return f"Custom.ECS{kind}{routing.percentage}Percent{every}{routing.interval}Minutes"

    def routing(self) -> tuple[str, int, int]:
        """(kind, percentage, interval in minutes) of the traffic shift."""
        routing = self.traffic_routing
        if routing is None:
            return CODEDEPLOY_ECS_CONFIGS[self.deployment_config]
        return routing.type, routing.percentage, routing.interval


class ServiceConfig(Model):
    """An ECS Fargate service: its task definition and its service settings."""

    build: str | None = None
    # runtime: docker builds the image from this Dockerfile, a path inside `build`.
    dockerfile: str = "Dockerfile"
    image: str | None = None
    # The native runtime runs tasks in a virtualenv of this Python with this requirements file
    # (a path inside `build`); by default both come from the Dockerfile (FROM python:X.Y, the
    # requirements file it copies in), so the two runtimes install the same packages.
    python: Annotated[str, StringConstraints(pattern=r"^3\.\d{1,2}$")] | None = None
    requirements: str | None = None
    command: list[str] | None = None
    container_port: Port = 8000
    cpu: Annotated[int, Field(ge=128, le=16384)] = 256
    memory: Annotated[int, Field(ge=128, le=122880)] = 512
    environment: dict[EnvName, str] = {}
    secrets: dict[EnvName, SecretRef] = {}
    health_check: HealthCheckConfig | None = None
    desired_count: TaskCount = 1
    # ECS's healthCheckGracePeriodSeconds: load balancer health checks are ignored this long
    # after a task starts, so a slow-starting task is not replaced before it can listen.
    health_check_grace_period: Annotated[float, Field(ge=0, le=2147483647)] = 0
    deployment: DeploymentConfig = DeploymentConfig()
    autoscaling: AutoscalingConfig | None = None
    load_balancer: ServiceLoadBalancerConfig | None = None
    # Where its tasks run: FARGATE and FARGATE_SPOT by base and weight; empty: launch type FARGATE.
    capacity_provider_strategy: Annotated[list[CapacityProviderStrategyItem], Field(max_length=STRATEGY_ITEMS)] = []
    # The task's output to CloudWatch Logs in the emulator, as the awslogs driver sends it.
    log_configuration: LogConfiguration | None = None
    # ECS: rolling deployments by the scheduler; CODE_DEPLOY: blue/green by CodeDeploy (`blue_green`).
    deployment_controller: Literal["ECS", "CODE_DEPLOY"] = "ECS"
    blue_green: BlueGreenConfig | None = None

    _env = field_validator("environment", mode="before")(classmethod(lambda cls, v: _scalars_to_str(v)))

    @field_validator("python", mode="before")
    @classmethod
    def _python_as_text(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError(f"write the Python version as a string in quotes (YAML reads {value} as a number, "
                             f"so 3.10 would become 3.1), e.g. python: \"3.12\"")
        return value

    @field_validator("command", mode="before")
    @classmethod
    def _command_list(cls, value: Any) -> Any:
        return value.split() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _runnable(self) -> "ServiceConfig":
        if self.build is None and self.image is None and self.command is None:
            raise ValueError("a service needs at least one of 'build', 'image' or 'command'")
        return self

    @model_validator(mode="after")
    def _blue_green(self) -> "ServiceConfig":
        if self.deployment_controller == "ECS" and self.blue_green is not None:
            raise ValueError("blue_green needs deployment_controller: CODE_DEPLOY (ECS, the default, deploys by "
                             "rolling update)")
        if self.deployment_controller == "CODE_DEPLOY" and self.load_balancer is None:
            raise ValueError("deployment_controller CODE_DEPLOY shifts traffic between two target groups of the "
                             "load balancer: the service needs a load_balancer section")
        return self

    @property
    def code_deploy(self) -> BlueGreenConfig | None:
        """The blue/green settings when CodeDeploy deploys this service (defaults when not given)."""
        if self.deployment_controller != "CODE_DEPLOY":
            return None
        return self.blue_green or BlueGreenConfig()


class LoadBalancerConfig(Model):
    """The internal ALB shared by every service."""

    hostname: str = "internal-alb.local"
    port: Port | None = None
    idle_timeout: Annotated[float, Field(gt=0, le=4000)] = 60
    rules: list[ListenerRuleConfig] = []  # beside each service's own rule


# ---------------------------------------------------------------- the edge (Route 53 -> CloudFront)

# CloudFront offers three sets of allowed methods and two of cached methods, nothing else.
EDGE_ALLOWED_METHODS: tuple[frozenset[str], ...] = (
    frozenset({"GET", "HEAD"}), frozenset({"GET", "HEAD", "OPTIONS"}),
    frozenset({"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"}))
EDGE_CACHED_METHODS: tuple[frozenset[str], ...] = EDGE_ALLOWED_METHODS[:2]
EdgeMethod = Literal["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
# TTLs are whole seconds (CloudFront's API takes a Long), up to 100 years.
TtlSeconds = Annotated[int, Field(ge=0, le=3153600000)]
HeaderName = Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")]
ParameterName = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def _method_set(value: Any) -> Any:
    return [_upper(v) for v in value] if isinstance(value, list) else value


def _one_of(methods: list[str], sets: tuple[frozenset[str], ...], what: str) -> list[str]:
    if frozenset(methods) not in sets:
        choices = "; ".join(", ".join(m for m in EDGE_ALLOWED_METHODS[-1] if m in s) for s in sets)
        raise ValueError(f"CloudFront's {what} are one of these sets: {choices}; got {', '.join(methods)}")
    return methods


class CacheKeyConfig(Model):
    """What the cache key holds besides the path (a CloudFront cache policy): named headers,
    and the query strings and cookies: ``none``, ``all`` or a list of names. Whatever the key
    holds, the edge forwards every header, query string and cookie to the origin (the managed
    origin request policy AllViewerExceptHostHeader, the one in front of API Gateway)."""

    headers: Annotated[list[HeaderName], Field(max_length=10)] = []  # CloudFront: 10 per policy
    query_strings: Literal["none", "all"] | Annotated[list[ParameterName], Field(min_length=1, max_length=10)] = "none"
    cookies: Literal["none", "all"] | Annotated[list[ParameterName], Field(min_length=1, max_length=10)] = "none"

    @field_validator("query_strings", "cookies", mode="before")
    @classmethod
    def _none_all_or_names(cls, value: Any) -> Any:
        """One message for the whole choice (not one per member of the union)."""
        if value in ("none", "all") or (isinstance(value, list) and 1 <= len(value) <= 10
                                        and all(isinstance(v, str) and 1 <= len(v) <= 256 for v in value)):
            return value
        shown = f"'{value}'" if isinstance(value, str) else type(value).__name__
        raise ValueError(f"expected 'none', 'all' or a list of 1 to 10 names, got {shown}")


class CacheBehaviorConfig(Model):
    """A cache behaviour, in CloudFront's terms. TTLs as a cache policy has them: an answer's
    ``Cache-Control`` (``s-maxage``, then ``max-age``) or ``Expires`` within min..max TTL,
    ``default_ttl`` when it has neither. Only GET and HEAD (OPTIONS if listed) are cached.
    Defaults: every method allowed (the edge fronts an API; CloudFront's console offers GET and
    HEAD), CloudFront's TTLs of 0 / 1 day / 1 year."""

    allowed_methods: list[EdgeMethod] = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods: list[EdgeMethod] = ["GET", "HEAD"]
    min_ttl: TtlSeconds = 0
    default_ttl: TtlSeconds = 86400
    max_ttl: TtlSeconds = 31536000
    cache_key: CacheKeyConfig = CacheKeyConfig()

    _methods = field_validator("allowed_methods", "cached_methods", mode="before")(
        classmethod(lambda cls, v: _method_set(v)))
    _key = field_validator("cache_key", mode="before")(classmethod(lambda cls, v: _null_is_empty(v)))

    @field_validator("allowed_methods")
    @classmethod
    def _allowed(cls, value: list[str]) -> list[str]:
        return _one_of(value, EDGE_ALLOWED_METHODS, "allowed methods")

    @field_validator("cached_methods")
    @classmethod
    def _cached(cls, value: list[str]) -> list[str]:
        return _one_of(value, EDGE_CACHED_METHODS, "cached methods")

    @model_validator(mode="after")
    def _consistent(self) -> "CacheBehaviorConfig":
        if not set(self.cached_methods) <= set(self.allowed_methods):
            raise ValueError(f"cached_methods ({', '.join(self.cached_methods)}) must be among allowed_methods "
                             f"({', '.join(self.allowed_methods)})")
        if not self.min_ttl <= self.default_ttl <= self.max_ttl:
            raise ValueError(f"CloudFront needs min_ttl <= default_ttl <= max_ttl; got {self.min_ttl}, "
                             f"{self.default_ttl}, {self.max_ttl}")
        return self


class PathBehaviorConfig(CacheBehaviorConfig):
    """A behaviour for the paths its pattern matches (``*`` any characters, ``?`` one,
    case-sensitive); the first matching behaviour in the list applies, else the default one."""

    path_pattern: Annotated[str, StringConstraints(min_length=1, max_length=255,
                                                   pattern=r"^[A-Za-z0-9_.*$/~'@:+?&=!,;%-]+$")]


class EdgeConfig(Model):
    """A CloudFront distribution in front of the API Gateway stage, over HTTPS with a CA
    generated for the stack: the hostname (``<stack>.localhost`` by default), the port (free
    by default), the cache behaviours, and how long errors are cached."""

    hostname: Annotated[str, StringConstraints(
        max_length=253, pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*localhost$")] | None = None
    port: Port | None = None
    # CloudFront sends viewers' paths to the origin under this path (its OriginPath): by
    # default the API's stage, so https://<hostname>:<port>/placements is /<stage>/placements.
    origin_path: Annotated[str, StringConstraints(pattern=r"^(/[A-Za-z0-9_.~-]+)*$", max_length=255)] | None = None
    error_caching_min_ttl: TtlSeconds = 10  # CloudFront's default for the 4xx/5xx it caches
    default_behavior: CacheBehaviorConfig = CacheBehaviorConfig()
    behaviors: Annotated[list[PathBehaviorConfig], Field(max_length=25)] = []  # CloudFront's quota: 25

    _default = field_validator("default_behavior", mode="before")(classmethod(lambda cls, v: _null_is_empty(v)))


# ---------------------------------------------------------------- docker runtime

ImageName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@{}-]*$", max_length=255)]


class DockerConfig(Model):
    """Images the Docker runtime (``runtime: docker``) runs. Each can also be set from the
    environment (``DEVENV_POSTGRES_IMAGE``, ``DEVENV_REDIS_IMAGE``, ``DEVENV_LAMBDA_IMAGE``;
    the emulator's is ``emulator.image`` / ``DEVENV_EMULATOR_IMAGE``), because machines
    without a registry build stand-ins under their own names."""

    postgres_image: ImageName | None = None  # default: postgres:<infra.postgres.version>
    redis_image: ImageName = "redis:7"
    # The base every Lambda instance image is built from; {version} becomes the function's
    # Python version (python3.11 -> 3.11).
    lambda_image: ImageName = "python:{version}-slim"


# ---------------------------------------------------------------- seed and the stack


class SeedS3Config(Model):
    bucket: BucketName
    path: str


class SeedConfig(Model):
    migrations: str | None = None
    data: str | None = None
    s3: list[SeedS3Config] = []


class TracingConfig(Model):
    """Spans per hop in .devenv/traces/ (``devenv trace``, the dashboard)."""

    enabled: bool = True
    # devenv's X-Ray daemon (the `xray` component) where AWS_XRAY_DAEMON_ADDRESS points
    # every task and function, for the X-Ray SDK and ADOT.
    xray_daemon: bool = True


class FargateSpotConfig(Model):
    """Fargate Spot's interruptions: a notice, then the capacity goes back ``warning`` seconds
    later (AWS: two minutes), whatever the task's stop still had to do."""

    warning: Annotated[float, Field(gt=0, le=120)] = 120
    # Random interruptions: the mean number per running FARGATE_SPOT task per hour (0: only
    # `devenv interrupt`).
    interruptions_per_task_hour: Annotated[float, Field(ge=0, le=3600)] = 0


class MetricsConfig(Model):
    """CloudWatch metrics the stack publishes into the emulator (AWS/ECS, ECS/ContainerInsights,
    AWS/Lambda, AWS/SQS, AWS/ApiGateway, AWS/ApplicationELB)."""

    enabled: bool = True
    # Seconds per published datapoint: CloudWatch's standard resolution is 60; finer locally.
    interval: Annotated[float, Field(ge=1, le=60)] = 10


# ---------------------------------------------------------------- the tour

# A hop of the architecture, as a tour step names it: `api`, `alb`, or a kind and a name.
HOP_FORM = re.compile(r"^(api|alb|(function|service|bus|queue) [A-Za-z0-9._/-]+)$")


class TourRequestConfig(Model):
    """The request `devenv tour` sends to the API and follows through the stack."""

    method: HttpMethod = "GET"
    path: Annotated[str, StringConstraints(pattern=r"^/")]
    body: Any = None  # sent as JSON when set
    status: Annotated[int, Field(ge=100, le=599)] | None = None  # expected; default any 2xx

    _method = field_validator("method", mode="before")(classmethod(lambda cls, v: _upper(v)))


class TourStepConfig(Model):
    """A hop the request must reach, and what to tell a newcomer there."""

    at: str
    say: str | None = None

    @field_validator("at")
    @classmethod
    def _hop(cls, value: str) -> str:
        value = " ".join(value.split())
        if not HOP_FORM.match(value):
            raise ValueError(f"'{value}' names no hop: write 'api', 'alb', or 'function NAME', 'service NAME', "
                             "'bus NAME' or 'queue NAME'")
        return value


class TourConfig(Model):
    """`devenv tour`: the request to send and a sentence per hop (the architecture part of the
    tour comes from the rest of the config)."""

    title: str | None = None
    request: TourRequestConfig
    steps: list[TourStepConfig] = []


class StackConfig(Model):
    """The whole of devenv.yaml (after the local overlay is merged in)."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] = "us-east-1"
    runtime: RuntimeKind = "native"
    emulator: EmulatorConfig = EmulatorConfig()
    infra: InfraConfig = InfraConfig()
    docker: DockerConfig = DockerConfig()
    buckets: dict[BucketName, BucketConfig] = {}
    queues: dict[QueueName, QueueConfig] = {}
    event_buses: dict[BusName, BusConfig] = {}
    functions: dict[FunctionName, FunctionConfig] = {}
    api: ApiConfig | None = None
    services: dict[ServiceName, ServiceConfig] = {}
    load_balancer: LoadBalancerConfig | None = None
    seed: SeedConfig | None = None
    tracing: TracingConfig = TracingConfig()
    metrics: MetricsConfig = MetricsConfig()
    fargate_spot: FargateSpotConfig = FargateSpotConfig()
    tour: TourConfig | None = None
    edge: EdgeConfig | None = None  # off unless configured

    @field_validator("emulator", mode="before")
    @classmethod
    def _emulator_shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else _null_is_empty(value)

    @field_validator("infra", "docker", "api", "load_balancer", "seed", "tracing", "edge", "fargate_spot",
                     mode="before")
    @classmethod
    def _section_default(cls, value: Any) -> Any:
        # A section written with no body (``load_balancer:``) is present with every default.
        return _null_is_empty(value)

    @field_validator("buckets", "queues", "event_buses", mode="before")
    @classmethod
    def _resource_defaults(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = {name: {} for name in value}  # `buckets: [a, b]` shorthand
        if isinstance(value, dict):
            return {k: _null_is_empty(v) for k, v in value.items()}
        return _null_is_empty(value)

    @field_validator("functions", "services", mode="before")
    @classmethod
    def _mapping_default(cls, value: Any) -> Any:
        return _null_is_empty(value)
