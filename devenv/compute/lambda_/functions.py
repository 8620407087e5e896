"""What devenv knows about one Lambda function, resolved from the config at the edge:
its code, handler, limits, environment and failure destinations."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from devenv.build.environments import isolated_path
from devenv.build.manifest import FunctionRuntime
from devenv.config.model import FunctionConfig, StackConfig

DEFAULT_ACCOUNT = "123456789012"  # moto's account; ARNs only need to be consistent locally
# Without reserved concurrency a function may use the account's unreserved pool (1,000 by
# default on AWS); locally each instance is a process, so the pool is smaller.
LOCAL_UNRESERVED_CONCURRENCY = 10
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024

ASYNC_PAYLOAD_LIMIT = 256 * 1024


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    code_dir: Path
    runtime: str
    memory_mb: int
    timeout: float
    environment: Mapping[str, str]
    reserved_concurrency: int | None
    maximum_retry_attempts: int
    on_failure_queue: str | None
    dead_letter_queue: str | None
    region: str
    account: str = DEFAULT_ACCOUNT
    log_file: Path = Path("/dev/null")
    interpreter: "Interpreter | None" = None  # the built environment (None: devenv's own Python, unisolated)
    layers: tuple[Path, ...] = ()  # layer folders (laid out as a layer's zip), in order
    secret_refs: Mapping[str, str] = field(default_factory=dict)  # variable -> stack value (`secrets:`)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"

    @property
    def concurrency_limit(self) -> int:
        if self.reserved_concurrency is not None:
            return self.reserved_concurrency
        return LOCAL_UNRESERVED_CONCURRENCY

    @classmethod
    def from_config(cls, name: str, config: FunctionConfig, *, root: Path, region: str,
                    log_dir: Path, account: str = DEFAULT_ACCOUNT) -> "FunctionSpec":
        return cls(
            name=name, handler=config.handler, code_dir=(root / config.code).resolve(),
            runtime=config.runtime, memory_mb=config.memory, timeout=float(config.timeout),
            environment=dict(config.environment), reserved_concurrency=config.reserved_concurrency,
            maximum_retry_attempts=config.maximum_retry_attempts,
            on_failure_queue=config.on_failure.queue if config.on_failure else None,
            dead_letter_queue=config.dead_letter_queue, region=region, account=account,
            log_file=log_dir / f"{name}.log", layers=tuple((root / layer).resolve() for layer in config.layers),
        )


def function_specs(config: StackConfig, *, root: Path, log_dir: Path,
                   values: Mapping[str, str] | None = None,
                   runtimes: Mapping[str, FunctionRuntime] | None = None) -> dict[str, FunctionSpec]:
    """Every function, with its ``secrets`` filled in from the running stack's ``values`` and
    its interpreter from the built environments (``runtimes``, by function name)."""
    specs = {}
    for name, fn in config.functions.items():
        spec = FunctionSpec.from_config(name, fn, root=root, region=config.region, log_dir=log_dir)
        if runtimes is not None and name in runtimes:
            built = runtimes[name]
            spec = replace(spec, interpreter=Interpreter(built.python, built.version, built.path))
        if fn.secrets:
            resolved = {key: (values or {})[ref] for key, ref in fn.secrets.items()}
            spec = replace(spec, environment={**spec.environment, **resolved}, secret_refs=dict(fn.secrets))
        specs[name] = spec
    return specs


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs a function's instances: the runtime's virtualenv (awslambdaric and
    boto3 only), and the folders after the code folder on its path (the function's own
    packages, its layers), as /var/task and /opt/python are on AWS."""

    executable: str
    version: str  # "3.11"
    path: tuple[str, ...] = ()
    warning: str | None = None


def choose_interpreter(spec: FunctionSpec) -> Interpreter:
    """The spec's built environment; without one (a FunctionSpec made by hand, as in devenv's
    own tests of the runtime) devenv's own Python, with a warning in the function's log
    because nothing then isolates the function from devenv's packages."""
    if spec.interpreter is not None:
        return spec.interpreter
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Interpreter(sys.executable, host, warning=(
        f"devenv: no environment was built for {spec.name}; running on devenv's own Python {host}, "
        f"which does not isolate it from devenv's packages"))


def instance_environment(spec: FunctionSpec, *, runtime_api: str, aws_env: Mapping[str, str],
                         interpreter: Interpreter, log_stream: str | None = None) -> dict[str, str]:
    """The environment AWS gives a function instance, bound to the local stack; ``log_stream``
    is the instance's CloudWatch Logs stream (a new name if not given)."""
    stream = log_stream or time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{uuid.uuid4().hex}"
    env = {
        "PATH": isolated_path(str(Path(interpreter.executable).parent)),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": os.pathsep.join([str(spec.code_dir), *interpreter.path]),
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "LAMBDA_RUNTIME_DIR": str(Path(interpreter.executable).parent),
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{interpreter.version}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
    }
    env.update(aws_env)
    env.update(spec.environment)
    return env

