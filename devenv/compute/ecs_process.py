"""The ECS process: ``python -m devenv.compute.ecs_process DEVENV_YAML``.

Runs the service scheduler, the internal ALB and a small control API (services, tasks,
deploy, scale, interrupt, task metadata) that `devenv ps`, `status`, `deploy`, `scale` and
`interrupt` talk to. The
supervisor runs it as the ``ecs`` component once Postgres, Redis and the emulator are up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

from devenv.config.loader import Overrides, load_project
from devenv.observe.spans import sink_from_environment
from devenv.runtime.peers import PeerScreen
from devenv.runtime.ports import HOST, load_remembered
from devenv.runtime.statedir import StateDir
from devenv.build import manifest
from devenv.compute.entry import fast_loop, run, until_stopped
from devenv.compute.http import server as http1
from devenv.compute.http.server import Request, Response, Router, error, guarded, json_response
from devenv.compute.ecs.processes import ProcessTasks
from devenv.compute.ecs.scheduler import AddressPool, Scheduler, ServiceSpec
from devenv.compute.ecs.task_sets import BlueGreenBusy, LambdaHooks, alternate_group
from devenv.runtime.docker import HOST_ALIAS
from devenv.stack_values import container_values, stack_values

log = logging.getLogger("devenv.ecs")


def service_specs(project, values: dict[str, str], runtimes=None) -> dict[str, ServiceSpec]:
    """Every service, with its secrets filled in and (native runtime) the virtualenv of its
    built environment from ``runtimes`` (by service name)."""
    specs = {}
    for name, config in project.config.services.items():
        environment = dict(config.environment)
        for key, ref in config.secrets.items():
            environment[key] = values[ref]
        environment.setdefault("AWS_REGION", project.config.region)
        environment.setdefault("AWS_DEFAULT_REGION", project.config.region)
        environment.setdefault("AWS_ENDPOINT_URL", values["aws.endpoint"])
        environment.setdefault("AWS_ACCESS_KEY_ID", "test")
        environment.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        if "xray.address" in values:
            environment.setdefault("AWS_XRAY_DAEMON_ADDRESS", values["xray.address"])
        source = (project.root / config.build).resolve() if config.build else project.root
        built = (runtimes or {}).get(name)
        specs[name] = ServiceSpec(name, config, source, environment, venv=built.venv if built else None)
    return specs


MAX_CONTROL_BODY = 64 * 1024  # a scale request is a few bytes


def control_app(scheduler: Scheduler, aws: http1.Handler | None = None) -> http1.Handler:
    """The control API (an ``http1`` handler), for programs on this machine only; ``aws``
    answers the AWS APIs (ECS, ELBv2, Application Auto Scaling) at ``POST /``."""

    def services(request: Request) -> Response:
        return json_response({"services": scheduler.services_json()})

    def tasks(request: Request) -> Response:
        return json_response({"tasks": scheduler.tasks_json(request.query.get("stopped", "1") == "1")})

    async def deploy(request: Request, name: str) -> Response:
        service = scheduler.services.get(name)
        if service is None:
            return error(404, f"unknown service {name!r}")
        await scheduler.prepare_revision(service.spec)
        try:
            deployment = service.new_revision("devenv deploy")
        except BlueGreenBusy as exc:
            return error(409, str(exc))
        answer = {"deployment": deployment.id, "revision": deployment.revision}
        if service.blue_green is not None:  # a blue/green deployment by CodeDeploy
            answer["codeDeploy"] = {"deploymentId": service.blue_green.deployments[-1].id,
                                    "deploymentConfig": service.blue_green.config.config_name}
        return json_response(answer)

    def scale(request: Request, name: str) -> Response:
        service = scheduler.services.get(name)
        if service is None:
            return error(404, f"unknown service {name!r}")
        count = _whole_number(request, "desiredCount", 0)
        if isinstance(count, Response):
            return count
        result = service.set_desired(count)
        tracking = service.autoscaling
        return json_response({
            "desiredCount": result.desired, "requestedCount": result.requested, "clampedTo": result.bound,
            "autoscaling": tracking and {"min": tracking.min, "max": tracking.max, "targetCpu": tracking.target_cpu,
                                         "scaleOutCooldown": tracking.scale_out_cooldown,
                                         "scaleInCooldown": tracking.scale_in_cooldown}})

    def interrupt(request: Request, name: str) -> Response:
        service = scheduler.services.get(name)
        if service is None:
            return error(404, f"unknown service {name!r}")
        count = _whole_number(request, "tasks", 1)
        if isinstance(count, Response):
            return count
        spot = len(service.spot_tasks())
        interrupted = service.interrupt(count)
        return json_response({"interrupted": [t.id for t in interrupted], "spotRunning": spot,
                              "warning": scheduler.spot.warning,
                              "capacityProviderStrategy": [i.model_dump() for i in service.strategy]})

    router = (Router()
              .add("GET", "/services", services)
              .add("GET", "/tasks", tasks)
              .add("POST", "/services/{name}/deploy", deploy)
              .add("POST", "/services/{name}/scale", scale)
              .add("POST", "/services/{name}/interrupt", interrupt))
    if aws is not None:
        router.add("POST", "/", lambda request: aws(request))
    return guarded(add_metadata_routes(router, scheduler))


def _whole_number(request: Request, key: str, least: int) -> int | Response:
    """The body's ``key``, a whole number >= ``least``, or the 400 that says what is wrong."""
    try:
        value = json.loads(request.body)[key]
    except (ValueError, KeyError, TypeError):
        return error(400, f'the body must be a JSON object with "{key}"')
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        return error(400, f"{key} must be a whole number >= {least}, not {value!r}")
    return value


def aws_apis(scheduler: Scheduler, config, balancer=None) -> http1.Handler:
    """ECS, ELBv2 and Application Auto Scaling in AWS's protocols, over the scheduler's and
    the load balancer's own state (``compute/ecs_aws``)."""
    from devenv.compute.ecs_aws import autoscaling, codedeploy, ecs
    from devenv.compute.ecs_aws.api import AwsApis
    from devenv.compute.ecs_aws.arns import Names
    from devenv.compute.ecs_aws.elbv2 import Elbv2Api

    names = Names(region=config.region, cluster=config.name)
    balanced = {name: s.load_balancer for name, s in config.services.items() if s.load_balancer}
    elbv2 = Elbv2Api(balancer, config.load_balancer if balancer is not None else None, balanced, names,
                     created=scheduler.created,
                     ports={name: s.container_port for name, s in config.services.items()})
    return AwsApis({ecs.TARGET_PREFIX: ecs.EcsApi(scheduler, names),
                    autoscaling.TARGET_PREFIX: autoscaling.AutoscalingApi(scheduler, names),
                    codedeploy.TARGET_PREFIX: codedeploy.CodeDeployApi(scheduler, names)},
                   {"elbv2": elbv2})


def ecs_events(scheduler: Scheduler, config, emulator: str):
    """ECS's task, service and deployment events on the emulator's default bus, as AWS puts
    them there: (the watching task, to cancel; its publisher, to close last)."""
    import time

    from devenv.aws.event_publisher import EventPublisher, events_client_factory
    from devenv.compute.ecs_aws.arns import Names
    from devenv.compute.ecs_aws.events import EcsEventWatcher
    from devenv.compute.ecs.scheduler import TICK

    publisher = EventPublisher(events_client_factory(emulator, config.region)).start()
    watcher = EcsEventWatcher(Names(region=config.region, cluster=config.name))

    async def watch() -> None:
        while True:
            for entry in watcher.changes(scheduler, time.time()):
                publisher.put(entry)
            await asyncio.sleep(TICK)

    return asyncio.get_running_loop().create_task(watch()), publisher


def metadata_app(scheduler: Scheduler, aws: http1.Handler | None = None) -> http1.Handler:
    """What containers reach on the Docker network's gateway: task metadata, and ``aws`` (the
    AWS APIs at ``POST /``, which code on AWS reaches too: a CodeDeploy hook function reports
    its status there). The control API, which can deploy, scale and interrupt, stays on
    127.0.0.1."""
    router = Router()
    if aws is not None:
        router.add("POST", "/", lambda request: aws(request))
    return guarded(add_metadata_routes(router, scheduler))


def add_metadata_routes(router: Router, scheduler: Scheduler) -> Router:
    def metadata(request: Request, task: str) -> Response:
        found = scheduler.task(task)
        if found is None:
            return error(404, f"unknown task {task!r}")
        return json_response(scheduler.task_metadata(found))

    return router.add("GET", "/v4/{task}", metadata).add("GET", "/v4/{task}/task", metadata)


async def serve(config_file: Path, overrides: Overrides) -> None:
    project = load_project(config_file, overrides=overrides)
    config = project.config
    state = StateDir(project.state_dir)
    ports = load_remembered(state.ports_file)
    values = stack_values(project, state, ports)
    emulator = values["aws.endpoint"]  # where this process reaches it (tasks may reach it by another name)
    engine = gateway = screen = None
    listen_also: tuple[str, ...] = ()
    if config.runtime == "docker":
        from devenv.runtime.docker import DockerEngine, stack_key

        engine = DockerEngine(stack_key(config.name, project.root, project.instance))
        gateway, also = engine.host_gateway()
        listen_also = (also,) if also else ()
        screen = PeerScreen.of(engine.stack_subnets()) if also else None  # the stack's containers only
        values = container_values(project, values, ports)
    metrics = None
    if config.metrics.enabled and config.services:
        from devenv.aws.metrics import MetricPublisher, cloudwatch_client_factory

        metrics = MetricPublisher(cloudwatch_client_factory(emulator, config.region, config.emulator.kind),
                                  interval=config.metrics.interval).start()
    balancer = None
    if config.load_balancer is not None:
        from devenv.compute.alb.balancer import LoadBalancer

        lb_services = {name: s.load_balancer for name, s in config.services.items() if s.load_balancer}
        blue_green = {name: (alternate_group(name), ports.get(f"alb-test-{name}") if s.code_deploy.test_listener_port
                             else None)
                      for name, s in config.services.items() if s.load_balancer and s.code_deploy is not None}
        alb_metrics = None
        if metrics is not None:  # AWS/ApplicationELB, named as the ELBv2 API names the load balancer
            from devenv.compute.alb.metrics import AlbMetrics
            from devenv.compute.ecs_aws.arns import Names

            names = Names(region=config.region, cluster=config.name)
            alb_metrics = AlbMetrics(metrics, names.load_balancer_arn, names.target_group_arn)
        balancer = LoadBalancer(config.load_balancer, lb_services, host=HOST, port=ports["alb"], also_on=listen_also,
                                screen=screen, sink=sink_from_environment("ecs"), blue_green=blue_green,
                                metrics=alb_metrics, health_interval=config.metrics.interval)
        await balancer.start()
    control = f"http://{HOST}:{ports['ecs']}"
    common = dict(state_dir=state.root / "ecs", log_dir=state.logs / "services", load_balancer=balancer,
                  addresses=AddressPool.for_stack(project.root, project.instance))
    if engine is not None:
        from devenv.compute.ecs.containers import ContainerTasks

        metadata = f"http://{HOST_ALIAS}:{ports['ecs']}"
        tasks = ContainerTasks(engine=engine, project=project, host_gateway=gateway, log_dir=common["log_dir"],
                               metadata_base=metadata)
        specs = service_specs(project, values)
    else:
        metadata = control
        tasks = ProcessTasks(common["state_dir"], metadata)
        specs = service_specs(project, values, manifest.read(state.environments_file).services)
    awslogs = None
    if any(s.log_configuration for s in config.services.values()):
        from devenv.aws.awslogs import LogShipper, logs_client_factory

        awslogs = LogShipper(logs_client_factory(emulator)).start()
    hooks = LambdaHooks(f"http://{HOST}:{ports['lambda']}") if "lambda" in ports else None  # CodeDeploy's hooks
    scheduler = Scheduler(specs, runner=tasks, awslogs=awslogs, region=config.region, metrics=metrics,
                          cluster=config.name, spot=config.fargate_spot, hooks=hooks, **common)
    apis = aws_apis(scheduler, config, balancer)
    servers = [await http1.serve(control_app(scheduler, apis), HOST, ports["ecs"], max_body=MAX_CONTROL_BODY)]
    # On Linux the stack network's gateway; none on Docker Desktop, where containers reach the
    # control API's 127.0.0.1 (metadata included) through host-gateway.
    servers += [await http1.serve(metadata_app(scheduler, apis), address, ports["ecs"], max_body=MAX_CONTROL_BODY,
                                  screen=screen) for address in listen_also]
    await scheduler.start()
    events, publisher = ecs_events(scheduler, config, emulator)
    print(f"ecs ready: control {control}" + (f", alb {HOST}:{ports['alb']}" if balancer else ""), flush=True)
    await until_stopped()
    await scheduler.stop_all()
    events.cancel()
    for sender in (awslogs, metrics, publisher):  # the stopped tasks' last lines and samples too
        if sender is not None:
            await asyncio.get_running_loop().run_in_executor(None, sender.close)
    if balancer is not None:
        await balancer.stop()
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    return run(serve, "devenv.compute.ecs_process", argv, loop_factory=fast_loop())


if __name__ == "__main__":
    from devenv.runtime.exit import exit_now

    exit_now(main(sys.argv))

