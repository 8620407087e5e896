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

from ..build.environments import LOCALSTACK_VERSION
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
    """moto's server through devenv's launcher (``infra/moto_server.py``): accountless, offline.

    Its state is durable (``infra/moto_durability.py``): journaled under
    ``.devenv/data/emulator/moto`` and restored before it serves again, so a restart (after a
    kill, a supervisor crash or ``down``/``up``) keeps queues, messages, buses, rules, targets,
    buckets and objects. devenv still deploys when it is ready: normally nothing to change."""

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

    durable: bool = True  # whether its state outlives the process (`devenv status` says so)

    @property
    def state_folder(self) -> Path:
        return self.state.data_dir(NAME) / "moto"

    def prepare(self) -> None:
        self.state_folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            name=NAME,
            argv=(sys.executable, "-m", "devenv.infra.moto_server", "-H", HOST, "-p", str(self.port),
                  "--state-dir", str(self.state_folder), *cors_options(self.config)),
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


# The devenv package, which the guarded launcher (``emulator_guard``) imports in an emulator's
# own environment: that environment's path gets a folder holding only a link to it.
PACKAGE = Path(__file__).resolve().parents[1]


def guarded(python: Path, module: str, config: EmulatorConfig) -> tuple[str, ...]:
    """The argv running ``module`` (``python -m``) behind devenv's guard (``emulator_guard``)."""
    return (str(python), "-m", "devenv.infra.emulator_guard", *cors_options(config), module)


def guard_path(work: Path) -> Path:
    """A folder under ``work`` whose only entry is ``devenv``, a link to this package: the
    emulator's ``PYTHONPATH``, so its environment sees devenv's guard and nothing else of ours."""
    folder = work / "pythonpath"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "devenv"
    if not (link.is_symlink() and link.resolve() == PACKAGE):
        link.unlink(missing_ok=True)
        link.symlink_to(PACKAGE, target_is_directory=True)
    return folder


def cors_options(config: EmulatorConfig) -> tuple[str, ...]:
    """The launcher's options for the web origins ``emulator.cors_origins`` allows."""
    return tuple(option for origin in config.cors_origins for option in ("--cors-origin", origin))


# ministack's services that devenv's exported endpoints name (EMULATED_SERVICES): the others
# (its own Lambda, ECS, API Gateway, ...) stay off, as devenv owns the compute plane.
# CloudWatch (metrics) takes ECS's utilisation (aws/metrics.py).
MINISTACK_SERVICES = "sqs,events,s3,sts,iam,logs,cloudwatch,sns,secretsmanager,ssm"


def ministack_settings(port: int, region: str) -> dict[str, str]:
    """ministack's settings on either runtime: its gateway's port, only the managed plane
    switched on, the stack's region. (Its queue URLs take the Host it was called at, so code
    on the host and containers calling it by its alias both get URLs they can reach.)"""
    return {"GATEWAY_PORT": str(port), "SERVICES": MINISTACK_SERVICES, "MINISTACK_REGION": region}


@dataclass
class Ministack(Moto):
    """ministack (``ministack``, one asyncio process) from its own virtualenv, which the
    environment builder installs. In memory, like moto: redeployed whenever it starts."""

    venv: Path | None = None
    label: str = field(default="ministack", init=False)
    durable: bool = False

    def prepare(self) -> None:
        guard_path(self.state.data_dir(NAME))

    def process(self) -> ProcessSpec:
        work = self.state.data_dir(NAME)
        return ProcessSpec(
            name=NAME,
            # behind devenv's guard: ministack answers any Host and any web origin
            argv=guarded(Path(self.venv) / "bin" / "python", "ministack", self.config),
            log_path=self.state.log_file(NAME),
            cwd=work,
            env={**ministack_settings(self.port, self.region), "BIND_HOST": HOST, "TMPDIR": str(work),
                 "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(work / "pythonpath")},
            stop_signal=signal.SIGTERM,
            death_signal=signal.SIGTERM,
            stop_timeout=5.0,
        )

    def probe(self) -> Probe:
        return HttpProbe(f"{self.endpoint}/_ministack/health")


# LocalStack's services devenv needs (Lambda is devenv's own, and LocalStack's would want Docker);
# CloudWatch takes ECS's metrics (aws/metrics.py), Logs the tasks' awslogs output.
LOCALSTACK_SERVICES = "sqs,events,s3,iam,sts,logs,cloudwatch"
AUTH_TOKEN = "LOCALSTACK_AUTH_TOKEN"


def localstack_settings(listen: str, auth_token: str | None, cors_origins: tuple[str, ...] = ()) -> dict[str, str]:
    """LocalStack's settings on either runtime: the managed plane loaded before the gateway
    answers, queue URLs by path, no DNS server, no analytics; the account token when given;
    ``emulator.cors_origins`` added to the web origins its own CORS check allows."""
    env = {"SERVICES": LOCALSTACK_SERVICES, "EAGER_SERVICE_LOADING": "1", "GATEWAY_LISTEN": listen,
           "SQS_ENDPOINT_STRATEGY": "path", "DNS_ADDRESS": "0", "DISABLE_EVENTS": "1"}
    if auth_token:
        env[AUTH_TOKEN] = auth_token
    if cors_origins:
        env["EXTRA_CORS_ALLOWED_ORIGINS"] = ",".join(cors_origins)
    return env


def localstack_needs_account(what: str, log_tail: list[str]) -> str | None:
    """Why LocalStack (``what``: its image or package) exited, when its log says an account
    is needed; None otherwise."""
    text = " ".join(log_tail).lower()
    if "auth" in text and ("token" in text or "license" in text) or "license" in text and "activat" in text:
        return (f"{what} needs an account: set {AUTH_TOKEN}, or use LocalStack {LOCALSTACK_VERSION}, "
                "the last release that runs without one")
    return None


@dataclass
class LocalStack(Moto):
    """LocalStack (``localstack-core``, 4.14.0 by default) from its own virtualenv on CPython
    3.13, which the environment builder installs: host mode (``OVERRIDE_IN_DOCKER=0``, as a
    machine with /.dockerenv otherwise misleads it), hypercorn on 127.0.0.1, its files under
    .devenv/data/emulator. In memory, like moto."""

    venv: Path | None = None
    auth_token: str | None = None
    durable: bool = False
    startup_timeout: float = 120.0  # it loads its services before it answers: ~4 s idle, 20 s on a busy box
    label: str = field(default="localstack", init=False)

    def prepare(self) -> None:
        (self.state.data_dir(NAME) / "tmp").mkdir(parents=True, exist_ok=True)
        guard_path(self.state.data_dir(NAME))

    def process(self) -> ProcessSpec:
        work = self.state.data_dir(NAME)
        env = localstack_settings(f"{HOST}:{self.port}", self.auth_token, tuple(self.config.cors_origins))
        # LOCALSTACK_HOST is where it says it is (queue URLs): its own, never a value from the
        # shell (`devenv env` exports another stack's for LocalStack's clients).
        env.update({"OVERRIDE_IN_DOCKER": "0", "GATEWAY_SERVER": "hypercorn", "LOCALSTACK_CLI": "0",
                    "LOCALSTACK_HOST": f"{HOST}:{self.port}",
                    "SKIP_SSL_CERT_DOWNLOAD": "1", "FILESYSTEM_ROOT": str(work), "TMPDIR": str(work / "tmp"),
                    "DEFAULT_REGION": self.region, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(work / "pythonpath")})
        return ProcessSpec(
            name=NAME,
            # behind devenv's guard: LocalStack answers any Host (its CORS check sees Origin only)
            argv=guarded(Path(self.venv) / "bin" / "python", "localstack.runtime.main", self.config),
            log_path=self.state.log_file(NAME),
            cwd=work,
            env=env,
            stop_signal=signal.SIGTERM,
            death_signal=signal.SIGTERM,
            stop_timeout=15.0,
        )

    def probe(self) -> Probe:
        return HttpProbe(f"{self.endpoint}/_localstack/health")

    def diagnose(self, log_tail: list[str]) -> str | None:
        return localstack_needs_account(f"localstack-core {self.config.version or LOCALSTACK_VERSION}", log_tail)


def not_durable(kind: str) -> str | None:
    """What ``devenv status`` says of an emulator that keeps the managed plane in memory only;
    None for moto, whose state devenv journals."""
    if kind == "moto":
        return None
    return (f"emulator {kind} keeps queues' messages (DLQs included) and S3 objects in memory only: "
            "a restart of it, a crash of the supervisor or `devenv down` loses them (devenv redeploys "
            "queues, buses, rules and buckets); moto, the default emulator, keeps them")


# The runtimes devenv runs each emulator kind on (the others are not supported yet).
RUNS_ON = {"moto": ("native", "docker"), "localstack": ("native", "docker"), "ministack": ("native", "docker")}


def not_available(kind: str, runtime: str, runs_on: dict[str, tuple[str, ...]] | None = None) -> DevenvError | None:
    """Why devenv cannot run emulator ``kind`` on ``runtime`` (by ``runs_on``, RUNS_ON unless
    given); None when it can."""
    runs_on = RUNS_ON if runs_on is None else runs_on
    if runtime in runs_on.get(kind, ()):
        return None
    usable = " or ".join(f"`emulator: {k}`{' (the default)' if k == 'moto' else ''}"
                         for k, runtimes in runs_on.items() if runtime in runtimes)
    elsewhere = [r for r in runs_on.get(kind, ()) if r != runtime]
    return DevenvError(f"emulator '{kind}' is not available on the {runtime} runtime yet",
                       hint=f"use {usable}" + (f", or `--runtime {elsewhere[0]}`" if elsewhere else ""))


def make_emulator(config: EmulatorConfig, state: StateDir, port: int,
                  on_ready: Callable[[bool], None] | None = None, *, venv: str | None = None,
                  region: str = "us-east-1", auth_token: str | None = None) -> Component:
    """The emulator component for the configured kind on the native runtime; ``venv`` is the
    environment devenv built for it (build/environments.py), for the kinds that need one."""
    if config.kind == "moto":
        return Moto(config, state, port, on_ready)
    if config.kind == "ministack":
        return Ministack(config, state, port, on_ready, region=region, venv=Path(_built(config.kind, venv)))
    if config.kind == "localstack":
        return LocalStack(config, state, port, on_ready, region=region, venv=Path(_built(config.kind, venv)),
                          auth_token=auth_token)
    raise not_available(config.kind, "native") or AssertionError(config.kind)


def _built(kind: str, venv: str | None) -> str:
    if venv is None:
        raise StateError(f"the {kind} emulator has no built environment", hint="run `devenv up` (or `devenv build`) again")
    return venv
