"""The AWS emulator serving the managed plane (SQS, EventBridge, S3, STS, IAM, Logs).

Every emulator implements the same Component protocol plus ``endpoint``; devenv's own
compute plane (Lambda, API Gateway, ECS, ALB) never depends on which one runs.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config.model import EmulatorConfig
from ..errors import DevenvError, StateError
from ..health import HttpProbe, Probe
from ..runtime.component import Component, ComponentKind
from ..runtime.ports import HOST
from ..runtime.process import ProcessSpec
from ..runtime.statedir import StateDir

NAME = "emulator"

# botocore's service ids for AWS_ENDPOINT_URL_<SERVICE>: the services devenv deploys or that
# functions are expected to call through the emulator.
EMULATED_SERVICES = ("SQS", "S3", "EVENTBRIDGE", "STS", "IAM", "CLOUDWATCH_LOGS", "SNS", "SECRETS_MANAGER", "SSM")


@dataclass
class Moto:
    """moto's server (``python -m moto.server``): accountless, offline, in-memory.

    Its state does not outlive the process, so devenv redeploys the managed plane every time
    it (re)starts."""

    config: EmulatorConfig
    state: StateDir
    port: int
    on_ready: Callable[[bool], None] | None = None
    name: str = NAME
    kind: ComponentKind = ComponentKind.EMULATOR
    depends_on: tuple[str, ...] = ()
    startup_timeout: float = 30.0
    region: str = "us-east-1"
    label: str = field(default="moto", init=False)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def prepare(self) -> None:
        return None

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            name=NAME,
            argv=(sys.executable, "-m", "devenv.infra.moto_server", "-H", HOST, "-p", str(self.port)),
            log_path=self.state.log_file(NAME),
            env={"PYTHONUNBUFFERED": "1"},
            stop_signal=signal.SIGTERM,
            death_signal=signal.SIGTERM,
            stop_timeout=5.0,
        )

    def probe(self) -> Probe:
        return HttpProbe(f"{self.endpoint}/moto-api/")

    def after_ready(self, restarted: bool) -> None:
        if self.on_ready is not None:
            self.on_ready(restarted)


# ministack's services that devenv's exported endpoints name (EMULATED_SERVICES): the others
# (its own Lambda, ECS, API Gateway, ...) stay off, as devenv owns the compute plane.
MINISTACK_SERVICES = "sqs,events,s3,sts,iam,logs,sns,secretsmanager,ssm"


@dataclass
class Ministack(Moto):
    """ministack (``ministack``, one asyncio process) from its own virtualenv, which the
    environment builder installs. In memory, like moto: redeployed whenever it starts."""

    venv: Path | None = None
    label: str = field(default="ministack", init=False)

    def prepare(self) -> None:
        self.state.data_dir(NAME).mkdir(parents=True, exist_ok=True)

    def process(self) -> ProcessSpec:
        work = self.state.data_dir(NAME)
        return ProcessSpec(
            name=NAME,
            argv=(str(Path(self.venv) / "bin" / "ministack"),),
            log_path=self.state.log_file(NAME),
            cwd=work,
            env={"GATEWAY_PORT": str(self.port), "BIND_HOST": HOST, "TMPDIR": str(work),
                 "SERVICES": MINISTACK_SERVICES, "MINISTACK_REGION": self.region,
                 "PYTHONUNBUFFERED": "1", "PYTHONPATH": ""},
            stop_signal=signal.SIGTERM,
            death_signal=signal.SIGTERM,
            stop_timeout=5.0,
        )

    def probe(self) -> Probe:
        return HttpProbe(f"{self.endpoint}/_ministack/health")


# The runtimes devenv runs each emulator kind on (the others are not supported yet).
RUNS_ON = {"moto": ("native", "docker"), "localstack": ("docker",), "ministack": ("native",)}


def not_available(kind: str, runtime: str) -> DevenvError | None:
    """Why devenv cannot run emulator ``kind`` on ``runtime``; None when it can."""
    if runtime in RUNS_ON.get(kind, ()):
        return None
    usable = " or ".join(f"`emulator: {k}`{' (the default)' if k == 'moto' else ''}"
                         for k, runtimes in RUNS_ON.items() if runtime in runtimes)
    elsewhere = [r for r in RUNS_ON.get(kind, ()) if r != runtime]
    return DevenvError(f"emulator '{kind}' is not available on the {runtime} runtime yet",
                       hint=f"use {usable}" + (f", or `--runtime {elsewhere[0]}`" if elsewhere else ""))


def make_emulator(config: EmulatorConfig, state: StateDir, port: int,
                  on_ready: Callable[[bool], None] | None = None, *, venv: str | None = None,
                  region: str = "us-east-1") -> Component:
    """The emulator component for the configured kind on the native runtime; ``venv`` is the
    environment devenv built for it (build/environments.py), for the kinds that need one."""
    if config.kind == "moto":
        return Moto(config, state, port, on_ready)
    if config.kind == "ministack":
        return Ministack(config, state, port, on_ready, region=region, venv=Path(_built(config.kind, venv)))
    raise not_available(config.kind, "native") or AssertionError(config.kind)


def _built(kind: str, venv: str | None) -> str:
    if venv is None:
        raise StateError(f"the {kind} emulator has no built environment", hint="run `devenv up` (or `devenv build`) again")
    return venv
