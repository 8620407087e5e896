"""The compute plane's two processes as supervised components: ``lambda`` (lambda_process.py:
the Lambda runtime, Invoke API, API Gateway and event sources) and ``ecs`` (ecs_process.py:
the ECS scheduler and the internal ALB)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devenv.errors import EndpointError
from devenv.health import HttpProbe, NeverReady, Probe
from devenv.runtime import http
from devenv.runtime.component import ComponentKind
from devenv.runtime.ports import HOST
from devenv.runtime.process import ProcessSpec
from devenv.runtime.statedir import StateDir

LAMBDA = "lambda"
ECS = "ecs"
XRAY = "xray"


def _process(name: str, module: str, config_file: Path, state: StateDir, options: tuple[str, ...],
             stop_timeout: float) -> ProcessSpec:
    """One of the compute plane's two processes: ``python -m MODULE DEVENV_YAML [overrides]``."""
    return ProcessSpec(
        name=name,
        argv=(sys.executable, "-m", module, str(config_file), *options),
        log_path=state.log_file(name),
        env={"PYTHONUNBUFFERED": "1"},
        stop_signal=signal.SIGTERM,
        death_signal=signal.SIGTERM,
        stop_timeout=stop_timeout,
    )


@dataclass
class ComputeService:
    config_file: Path
    state: StateDir
    port: int
    api_port: int | None = None
    name: str = LAMBDA
    kind: ComponentKind = ComponentKind.COMPUTE
    depends_on: tuple[str, ...] = ("emulator",)
    startup_timeout: float = 30.0
    before_start: Callable[[], None] | None = None  # e.g. build the instance images (runtime: docker)
    options: tuple[str, ...] = ()  # after the file: the project's command-line overrides (Overrides.argv)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def prepare(self) -> None:
        if self.before_start is not None:
            self.before_start()

    def process(self) -> ProcessSpec:
        return _process(LAMBDA, "devenv.compute.lambda_process", self.config_file, self.state, self.options, 10.0)

    def probe(self) -> Probe:
        return HttpProbe(f"{self.endpoint}/2015-03-31/functions/")

    def after_ready(self, restarted: bool) -> None:
        return None


class ServicesSteady:
    """Ready when the scheduler answers and every service runs its desired count of healthy
    tasks: `devenv up` returns once the services can take traffic, not merely once the
    scheduler process is listening. Never ready once a service's tasks keep crashing (the
    scheduler's verdict, see ecs_startup): the wait then ends with that task's own output."""

    def __init__(self, url: str, timeout: float = 2.0):
        self.url = url
        self.timeout = timeout
        self._cannot_start: NeverReady | None = None

    def check(self) -> bool:
        try:
            services = http.request("GET", self.url, timeout=self.timeout).checked().json()["services"]
            self._cannot_start = next((NeverReady(s["serviceName"], s["cannotStart"]["message"],
                                                  tuple(s["cannotStart"]["output"]))
                                       for s in services if s.get("cannotStart")), None)
            return all(s["healthyCount"] >= s["desiredCount"] for s in services)
        except (EndpointError, KeyError, TypeError):
            return False

    def never_ready(self) -> NeverReady | None:
        return self._cannot_start


def startup_budget(services) -> float:
    """How long the services may take to become healthy with their own health-check
    settings (start period, interval and retries, the target group's checks), plus slack."""
    budget = 60.0
    for service in services.values():
        need = 30.0 + service.health_check_grace_period  # a task may start that slowly, by its own settings
        if service.health_check is not None:
            hc = service.health_check
            need += hc.start_period + hc.interval * (hc.retries + 1)
        if service.load_balancer is not None:
            tg = service.load_balancer.health_check
            need += tg.interval * (tg.healthy_threshold + 1)
        budget = max(budget, need)
    return budget


@dataclass
class EcsService:
    config_file: Path
    state: StateDir
    control_port: int
    alb_port: int | None
    depends_on: tuple[str, ...] = ("emulator",)
    name: str = ECS
    kind: ComponentKind = ComponentKind.COMPUTE
    startup_timeout: float = 30.0
    before_start: Callable[[], None] | None = None  # e.g. build the service images (runtime: docker)
    options: tuple[str, ...] = ()  # after the file: the project's command-line overrides (Overrides.argv)

    def address(self) -> str:
        return f"{HOST}:{self.alb_port or self.control_port}"

    def prepare(self) -> None:
        if self.before_start is not None:
            self.before_start()

    def process(self) -> ProcessSpec:
        return _process(ECS, "devenv.compute.ecs_process", self.config_file, self.state, self.options, 20.0)

    def probe(self) -> Probe:
        return ServicesSteady(f"http://{HOST}:{self.control_port}/services")

    def after_ready(self, restarted: bool) -> None:
        return None


@dataclass
class XrayDaemon:
    """devenv's X-Ray daemon (observe/xray_daemon.py): UDP segments and TCP sampling calls on
    one port. Depends on nothing: segments wait in it until the emulator answers."""

    config_file: Path
    state: StateDir
    port: int
    options: tuple[str, ...] = ()
    name: str = XRAY
    kind: ComponentKind = ComponentKind.COMPUTE
    depends_on: tuple[str, ...] = ()
    startup_timeout: float = 20.0

    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def prepare(self) -> None:
        return None

    def process(self) -> ProcessSpec:
        return _process(XRAY, "devenv.observe.xray_daemon", self.config_file, self.state, self.options, 5.0)

    def probe(self) -> Probe:
        return HttpProbe(f"http://{HOST}:{self.port}/health")

    def after_ready(self, restarted: bool) -> None:
        return None
