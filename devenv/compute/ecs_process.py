"""The ECS process: ``python -m devenv.compute.ecs_process DEVENV_YAML``.

Runs the service scheduler, the internal ALB and a small control API (services, tasks,
deploy, scale, task metadata) that `devenv ps`, `status`, `deploy` and `scale` talk to. The
supervisor runs it as the ``ecs`` component once Postgres, Redis and the emulator are up.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from aiohttp import web

from devenv.config.loader import Overrides, load_project
from devenv.observe.spans import sink_from_environment
from devenv.runtime.peers import PeerScreen, screened
from devenv.runtime.ports import HOST, load_remembered
from devenv.runtime.statedir import StateDir
from devenv.build import manifest
from devenv.compute.entry import run, until_stopped
from devenv.compute.ecs.processes import ProcessTasks
from devenv.compute.ecs.scheduler import AddressPool, Scheduler, ServiceSpec
from devenv.runtime.docker import HOST_ALIAS
from devenv.runtime.guard import aiohttp_middleware
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


def control_app(scheduler: Scheduler) -> web.Application:
    app = web.Application(middlewares=[aiohttp_middleware()])  # programs on this machine, never a web page

    async def services(request: web.Request) -> web.Response:
        return web.json_response({"services": scheduler.services_json()})

    async def tasks(request: web.Request) -> web.Response:
        return web.json_response({"tasks": scheduler.tasks_json(request.query.get("stopped", "1") == "1")})

    async def deploy(request: web.Request) -> web.Response:
        service = scheduler.services.get(request.match_info["name"])
        if service is None:
            return web.json_response({"message": "unknown service"}, status=404)
        await scheduler.prepare_revision(service.spec)
        deployment = service.new_revision("devenv deploy")
        return web.json_response({"deployment": deployment.id, "revision": deployment.revision})

    async def scale(request: web.Request) -> web.Response:
        service = scheduler.services.get(request.match_info["name"])
        if service is None:
            return web.json_response({"message": "unknown service"}, status=404)
        body = await request.json()
        result = service.set_desired(int(body["desiredCount"]))
        tracking = service.spec.config.autoscaling
        return web.json_response({
            "desiredCount": result.desired, "requestedCount": result.requested, "clampedTo": result.bound,
            "autoscaling": tracking and {"min": tracking.min, "max": tracking.max, "targetCpu": tracking.target_cpu,
                                         "scaleOutCooldown": tracking.scale_out_cooldown,
                                         "scaleInCooldown": tracking.scale_in_cooldown}})

    app.router.add_get("/services", services)
    app.router.add_get("/tasks", tasks)
    app.router.add_post("/services/{name}/deploy", deploy)
    app.router.add_post("/services/{name}/scale", scale)
    add_metadata_routes(app, scheduler)
    return app


def metadata_app(scheduler: Scheduler) -> web.Application:
    """Task metadata only: what task containers reach on the Docker network's gateway (the
    control API, which can deploy and scale, stays on 127.0.0.1)."""
    app = web.Application(middlewares=[aiohttp_middleware()])
    add_metadata_routes(app, scheduler)
    return app


def add_metadata_routes(app: web.Application, scheduler: Scheduler) -> None:
    async def metadata(request: web.Request) -> web.Response:
        task = scheduler.task(request.match_info["task"])
        if task is None:
            return web.json_response({"message": "unknown task"}, status=404)
        return web.json_response(scheduler.task_metadata(task))

    app.router.add_get("/v4/{task}", metadata)
    app.router.add_get("/v4/{task}/task", metadata)


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
    balancer = None
    if config.load_balancer is not None:
        from devenv.compute.alb.balancer import LoadBalancer

        lb_services = {name: s.load_balancer for name, s in config.services.items() if s.load_balancer}
        balancer = LoadBalancer(config.load_balancer, lb_services, host=HOST, port=ports["alb"], also_on=listen_also,
                                screen=screen, sink=sink_from_environment("ecs"))
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
    metrics = None
    if config.metrics.enabled and config.services:
        from devenv.aws.metrics import MetricPublisher, cloudwatch_client_factory

        metrics = MetricPublisher(cloudwatch_client_factory(emulator, config.region),
                                  interval=config.metrics.interval).start()
    scheduler = Scheduler(specs, runner=tasks, awslogs=awslogs, region=config.region, metrics=metrics, **common)
    runner = web.AppRunner(control_app(scheduler), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, HOST, ports["ecs"], reuse_address=True).start()
    metadata_runner = web.AppRunner(metadata_app(scheduler), access_log=None, handle_signals=False,
                                    shutdown_timeout=1.0)
    await metadata_runner.setup()
    # On Linux the stack network's gateway; none on Docker Desktop, where containers reach the
    # control API's 127.0.0.1 (metadata included) through host-gateway.
    loop = asyncio.get_running_loop()
    metadata_servers = [await loop.create_server(screened(metadata_runner.server, screen), address, ports["ecs"],
                                                 reuse_address=True) for address in listen_also]
    await scheduler.start()
    print(f"ecs ready: control {control}" + (f", alb {HOST}:{ports['alb']}" if balancer else ""), flush=True)
    await until_stopped()
    await scheduler.stop_all()
    for sender in (awslogs, metrics):  # the stopped tasks' last lines and samples too
        if sender is not None:
            await asyncio.get_running_loop().run_in_executor(None, sender.close)
    if balancer is not None:
        await balancer.stop()
    await runner.cleanup()
    for server in metadata_servers:
        server.close()
    await metadata_runner.cleanup()


def main(argv: list[str]) -> int:
    return run(serve, "devenv.compute.ecs_process", argv)


if __name__ == "__main__":
    from devenv.runtime.exit import exit_now

    exit_now(main(sys.argv))

