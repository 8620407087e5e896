"""The compute process: ``python -m devenv.compute.lambda_process DEVENV_YAML``.

One asyncio process serving devenv's Lambda side of the compute plane: the Lambda runtime
(with each instance's Runtime API), the Invoke API, API Gateway, SQS event source mappings
and EventBridge Lambda targets. The supervisor runs it as the ``lambda`` component, after
the emulator is ready and the managed plane deployed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

from aiohttp import web

from devenv.aws.awslogs import LogShipper, logs_client_factory
from devenv.aws.endpoint import AwsEndpoint, make_client, one_attempt_client_factory
from devenv.aws.metrics import MetricPublisher, cloudwatch_client_factory
from devenv.aws.queue_metrics import QueueDepthSampler
from devenv.build import manifest
from devenv.config.loader import Overrides, load_project
from devenv.observe.spans import sink_from_environment
from devenv.runtime.peers import PeerScreen, screened
from devenv.runtime.ports import HOST, load_remembered
from devenv.runtime.statedir import StateDir
from devenv.compute.entry import fast_loop, run, until_stopped
from devenv.compute.event_sources import EventSourceManager
from devenv.compute.event_sources.api import EventSourceMappingApi
from devenv.compute.lambda_.functions import DEFAULT_ACCOUNT, function_specs
from devenv.stack_values import stack_values
from devenv.compute.lambda_ import invoke_api
from devenv.compute.lambda_.runtime import AsyncFailure, LambdaRuntime

log = logging.getLogger("devenv.compute")


def destination_record(failure: AsyncFailure) -> dict:
    """The on-failure destination message AWS sends for an async invocation."""
    result = failure.result
    response = None
    if result is not None:
        try:
            response = json.loads(result.payload)
        except ValueError:
            response = result.payload.decode(errors="replace")
    try:
        request = json.loads(failure.payload)
    except ValueError:
        request = failure.payload.decode(errors="replace")
    return {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z",
        "requestContext": {"requestId": failure.request_id, "functionArn": f"{failure.function.arn}:$LATEST",
                           "condition": failure.condition, "approximateInvokeCount": failure.attempts},
        "requestPayload": request,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                            "functionError": result.function_error if result else "Unhandled"},
        "responsePayload": response,
    }


class FailureSink:
    """Sends exhausted async invocations to the function's on-failure destination (a
    destination record) or, failing that, its dead-letter queue (the original event with
    RequestID / ErrorCode / ErrorMessage attributes), as AWS does."""

    def __init__(self, endpoint: AwsEndpoint):
        self._endpoint = endpoint
        self._sqs = None

    def _client(self):
        if self._sqs is None:
            self._sqs = make_client("sqs", self._endpoint)
        return self._sqs

    async def __call__(self, failure: AsyncFailure) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._send, failure)

    def _send(self, failure: AsyncFailure) -> None:
        spec = failure.function
        sqs = self._client()
        traced = ({"MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": failure.trace_id}}}
                  if failure.trace_id else {})
        try:
            if spec.on_failure_queue:
                url = sqs.get_queue_url(QueueName=spec.on_failure_queue)["QueueUrl"]
                sqs.send_message(QueueUrl=url, MessageBody=json.dumps(destination_record(failure)), **traced)
            elif spec.dead_letter_queue:
                url = sqs.get_queue_url(QueueName=spec.dead_letter_queue)["QueueUrl"]
                error = failure.result.error() if failure.result else {}
                sqs.send_message(QueueUrl=url, MessageBody=failure.payload.decode(errors="replace"),
                                 MessageAttributes={
                                     "RequestID": {"DataType": "String", "StringValue": failure.request_id},
                                     "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                                     "ErrorMessage": {"DataType": "String",
                                                      "StringValue": (error or {}).get("errorMessage", "")[:1024] or "-"},
                                 }, **traced)
        except Exception as exc:  # the emulator may be restarting; the log says what was lost
            log.error("could not deliver failed async invocation %s of %s: %s", failure.request_id, spec.name, exc)


async def serve(config_file: Path, overrides: Overrides) -> None:
    project = load_project(config_file, overrides=overrides)
    config = project.config
    state = StateDir(project.state_dir)
    ports = load_remembered(state.ports_file)
    emulator = f"http://{HOST}:{ports['emulator']}"
    endpoint = AwsEndpoint(emulator, config.region)
    aws_env = {"AWS_ENDPOINT_URL": emulator, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_SESSION_TOKEN": "test", "AWS_ENDPOINT_URL_LAMBDA": f"http://{HOST}:{ports['lambda']}"}
    values = stack_values(project, state, ports)
    if "ecs.endpoint" in values:  # CodeDeploy's hooks report their status to the ecs process
        aws_env["AWS_ENDPOINT_URL_CODEDEPLOY"] = values["ecs.endpoint"]
    if "xray.address" in values:  # the Lambda service sets it for every function
        aws_env["AWS_XRAY_DAEMON_ADDRESS"] = values["xray.address"]
    sink = sink_from_environment("lambda")
    # Every function's lines also go to CloudWatch Logs, /aws/lambda/<name>, as on AWS.
    awslogs = LogShipper(logs_client_factory(emulator)).start() if config.functions else None
    metrics = None
    if config.functions and config.metrics.enabled:
        metrics = MetricPublisher(cloudwatch_client_factory(emulator, config.region, config.emulator.kind),
                                  interval=config.metrics.interval)
        if config.queues:  # AWS/SQS queue depths, sampled on the publisher's thread
            metrics.add_sampler(QueueDepthSampler(one_attempt_client_factory("sqs", emulator, config.region),
                                                 config.queues))
        metrics.start()
    if config.runtime == "docker":
        runtime = _container_runtime(project, state, ports, aws_env, values, FailureSink(endpoint), sink, awslogs,
                                     metrics)
    else:
        runtime = LambdaRuntime(function_specs(config, root=project.root, log_dir=state.logs / "functions",
                                               values=values,
                                               runtimes=manifest.read(state.environments_file).functions),
                                aws_env=aws_env, on_async_failure=FailureSink(endpoint), sink=sink, awslogs=awslogs,
                                metrics=metrics)
    await runtime.start()
    runners: list[web.AppRunner] = []

    # runtime: docker on a Linux engine: containers reach the host at the stack network's
    # gateway (what host.docker.internal maps to), so the servers listen there too, for the
    # stack network's containers only (any container on the host can reach that address).
    gateways = [runtime.listen_host] if runtime.listen_host != HOST else []
    screen = runtime.listen_screen
    loop = asyncio.get_running_loop()
    # Built (not started) before the Invoke API serves: the Lambda API's mapping calls read them.
    sources = EventSourceManager.from_config(config, runtime, endpoint, sink=sink)
    routes = EventSourceMappingApi(sources, runtime, DEFAULT_ACCOUNT).routes()
    servers = [await invoke_api.serve(runtime, HOST, ports["lambda"], routes=routes)]
    servers += [await invoke_api.serve(runtime, host, ports["lambda"], screen=screen, routes=routes)
                for host in gateways]

    async def listen(app: web.Application, port: int) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        await web.TCPSite(runner, HOST, port, reuse_address=True).start()
        for host in gateways:
            servers.append(await loop.create_server(screened(runner.server, screen), host, port,
                                                    reuse_address=True))
        runners.append(runner)

    if config.api is not None and "apigateway" in ports:
        from devenv.compute.apigateway.server import make_app as make_api_app

        from devenv.compute.apigateway.metrics import ApiMetrics

        api_metrics = ApiMetrics(metrics, config.api.name, config.api.stage) if metrics is not None else None
        await listen(make_api_app(config.api, runtime, region=config.region, sink=sink, metrics=api_metrics),
                     ports["apigateway"])
    await sources.start()
    print(f"compute ready: lambda {HOST}:{ports['lambda']}"
          + (f", api {HOST}:{ports['apigateway']}" if "apigateway" in ports and config.api else ""), flush=True)

    await until_stopped()
    await sources.stop()
    for server in servers:
        server.close()
    for runner in runners:
        await runner.cleanup()
    await runtime.stop()
    for sender in (awslogs, metrics):  # the last lines and samples of the stopped instances too
        if sender is not None:
            await asyncio.get_running_loop().run_in_executor(None, sender.close)


def _container_runtime(project, state, ports, aws_env, values, failures, sink, awslogs, metrics):
    """runtime: docker: instances are containers that see the stack as containers do."""
    from devenv.runtime.docker import DockerEngine, stack_key
    from devenv.compute.lambda_.containers import ContainerInstances, build_instance_images
    from devenv.stack_values import container_values

    config = project.config
    engine = DockerEngine(stack_key(config.name, project.root, project.instance))
    gateway, listen = engine.host_gateway()
    inside = container_values(project, {**values, **aws_env}, ports)
    hosts = ((config.load_balancer.hostname, gateway),) if config.load_balancer is not None else ()
    launcher = ContainerInstances(
        engine=engine, images=build_instance_images(engine, config, state.logs / "functions", project.root),
        listen_host=listen or HOST, host_gateway=gateway, extra_hosts=hosts,
        listen_screen=PeerScreen.of(engine.stack_subnets()) if listen else None)
    return LambdaRuntime(
        function_specs(config, root=project.root, log_dir=state.logs / "functions", values=inside),
        launcher=launcher, aws_env={k: inside[k] for k in aws_env}, on_async_failure=failures, sink=sink,
        awslogs=awslogs, metrics=metrics)


def main(argv: list[str]) -> int:
    return run(serve, "devenv.compute.lambda_process", argv, loop_factory=fast_loop())


if __name__ == "__main__":
    from devenv.runtime.exit import exit_now

    exit_now(main(sys.argv))
