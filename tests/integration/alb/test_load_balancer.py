"""The ALB with real sockets: aiohttp backends on their own 127.0.0.x addresses (Linux routes
all of 127/8 to lo), real health checks on short intervals, and a real client. Tests wait on
conditions with deadlines, never on fixed sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
from yarl import URL

from devenv.compute.alb.balancer import LoadBalancer
from devenv.compute.alb.health import TargetState
from devenv.config.model import LoadBalancerConfig, ServiceLoadBalancerConfig
from tests.integration.alb.backend import Backend
from tests.support import ListSink, Samples

REPO = Path(__file__).resolve().parents[3]
TRACE_ROOT = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}")


def service(**overrides: Any) -> ServiceLoadBalancerConfig:
    data: dict[str, Any] = {
        "paths": ["/*"], "priority": 10, "deregistration_delay": 10,
        "health_check": {"path": "/health", "interval": 0.1, "timeout": 0.5,
                         "healthy_threshold": 2, "unhealthy_threshold": 2},
    }
    data.update(overrides)
    return ServiceLoadBalancerConfig.model_validate(data)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


class Rig:
    """A started load balancer, its backends and a client."""

    def __init__(self, lb: LoadBalancer, client: aiohttp.ClientSession) -> None:
        self.lb = lb
        self.client = client
        self.backends: dict[str, Backend] = {}

    async def backend(self, service_name: str, name: str, host: str, *, register: bool = True,
                      healthy: bool = True) -> Backend:
        backend = Backend(name, host)
        await backend.start()
        self.backends[name] = backend
        if register:
            self.lb.group(service_name).register(name, host, backend.port)
            if healthy:
                assert await until(lambda: self.lb.group(service_name).state(name) is TargetState.HEALTHY)
        return backend

    async def get(self, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        async with self.client.get(self.lb.url + path, **kwargs) as response:
            return response.status, dict(response.headers), await response.read()

    async def get_json(self, path: str, **kwargs: Any) -> dict:
        async with self.client.get(self.lb.url + path, **kwargs) as response:
            assert response.status == 200, await response.text()
            return await response.json()


@contextlib.asynccontextmanager
async def rig(services: dict[str, ServiceLoadBalancerConfig] | None = None,
              idle_timeout: float = 5.0, sink: Any = None, rules: list[dict] | None = None,
              metrics: Any = None) -> AsyncIterator[Rig]:
    config = LoadBalancerConfig.model_validate({"idle_timeout": idle_timeout, "rules": rules or []})
    lb = LoadBalancer(config, services or {"api": service()}, sink=sink, metrics=metrics)
    await lb.start()
    client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    r = Rig(lb, client)
    try:
        yield r
    finally:
        await client.close()
        await lb.stop()
        for backend in r.backends.values():
            await backend.stop()


def run(test: Callable[[], Any]) -> None:
    asyncio.run(test())


# ---------------------------------------------------------------- routing and round robin


def test_round_robin_across_two_healthy_targets():
    async def test():
        async with rig() as r:
            await r.backend("api", "a", "127.0.0.11")
            await r.backend("api", "b", "127.0.0.12")
            seen = [(await r.get_json("/orders"))["backend"] for _ in range(10)]
            assert sorted(seen) == ["a"] * 5 + ["b"] * 5
            assert all(seen[i] != seen[i + 1] for i in range(9))  # strictly alternating
    run(test)


def test_listener_rules_route_by_path_and_host_and_default_to_404():
    async def test():
        services = {
            "orders": service(paths=["/orders/*"], priority=1),
            "admin": service(paths=["/*"], hosts=["admin.*.local"], priority=2),
            "web": service(paths=["/web/*", "/static/*"], priority=3),
        }
        async with rig(services) as r:
            for name, host in (("orders", "127.0.0.21"), ("admin", "127.0.0.22"), ("web", "127.0.0.23")):
                await r.backend(name, name, host)
            assert (await r.get_json("/orders/7?x=/web/"))["backend"] == "orders"
            assert (await r.get_json("/orders/7", headers={"Host": "admin.x.local"}))["backend"] == "orders"
            assert (await r.get_json("/anything", headers={"Host": "ADMIN.x.local:80"}))["backend"] == "admin"
            assert (await r.get_json("/static/app.js"))["backend"] == "web"
            status, headers, body = await r.get("/nothing/here?x=/orders/1")  # the query is not matched
            assert status == 404
            assert body.startswith(b"Not Found")
    run(test)


# ---------------------------------------------------------------- health


def test_a_target_whose_health_check_fails_stops_receiving_traffic():
    async def test():
        async with rig() as r:
            a = await r.backend("api", "a", "127.0.0.31")
            await r.backend("api", "b", "127.0.0.32")
            a.health_status = 500
            group = r.lb.group("api")
            assert await until(lambda: group.state("a") is TargetState.UNHEALTHY)
            [snapshot] = [t for t in group.targets() if t.target_id == "a"]
            assert snapshot.consecutive_failures >= 2
            assert snapshot.reason is not None and snapshot.reason.value == "Target.ResponseCodeMismatch"
            before = len(a.requests)
            seen = [(await r.get_json("/x"))["backend"] for _ in range(6)]
            assert seen == ["b"] * 6 and len(a.requests) == before

            a.health_status = 200  # back in service after healthy_threshold successes
            assert await until(lambda: group.state("a") is TargetState.HEALTHY)
            seen = {(await r.get_json("/x"))["backend"] for _ in range(4)}
            assert seen == {"a", "b"}
    run(test)


def test_503_when_no_target_is_healthy():
    async def test():
        async with rig({"api": service(), "empty": service(paths=["/empty/*"], priority=1)}) as r:
            status, headers, body = await r.get("/empty/x")  # no target registered at all
            assert status == 503
            assert headers["Server"] == "awselb/2.0" and headers["Content-Type"] == "text/html"
            assert b"<center><h1>503 Service Temporarily Unavailable</h1></center>" in body

            sick = await r.backend("api", "sick", "127.0.0.41", healthy=False)
            sick.health_status = 503
            assert await until(lambda: r.lb.group("api").state("sick") is TargetState.UNHEALTHY)
            status, _, _ = await r.get("/x")
            assert status == 503  # devenv does not fail open
            assert sick.requests == []
    run(test)


def test_a_new_target_gets_no_traffic_before_its_first_passing_check():
    async def test():
        async with rig({"api": service(health_check={"path": "/health", "interval": 30, "timeout": 0.5})}) as r:
            slow_to_start = await r.backend("api", "a", "127.0.0.42", register=False)
            slow_to_start.health_status = 500
            group = r.lb.group("api")
            group.register("a", "127.0.0.42", slow_to_start.port)
            assert await until(lambda: group.targets()[0].consecutive_failures == 1)
            assert group.state("a") is TargetState.INITIAL
            assert (await r.get("/x"))[0] == 503
            assert slow_to_start.requests == []
    run(test)


# ---------------------------------------------------------------- 502 / 504


async def start_process_backend(host: str, name: str) -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.alb.backend", host, name, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 20)
    return process, int(line)


def test_a_killed_target_gives_502_until_health_checks_take_it_out():
    async def test():
        # A one-second interval leaves time to see the 502s before the checks notice.
        checks = {"path": "/health", "interval": 1.0, "timeout": 0.5, "healthy_threshold": 2,
                  "unhealthy_threshold": 2}
        async with rig({"api": service(health_check=checks)}) as r:
            process, port = await start_process_backend("127.0.0.51", "doomed")
            try:
                group = r.lb.group("api")
                group.register("doomed", "127.0.0.51", port)
                assert await until(lambda: group.state("doomed") is TargetState.HEALTHY, 10)
                await r.backend("api", "b", "127.0.0.52")

                in_flight = asyncio.ensure_future(r.get("/slow?seconds=30"))  # round robin: to 'doomed'
                assert await until(lambda: group.in_flight("doomed") == 1)
                process.send_signal(signal.SIGKILL)
                await process.wait()

                status, headers, body = await in_flight
                assert status == 502
                assert headers["Server"] == "awselb/2.0"
                assert b"<center><h1>502 Bad Gateway</h1></center>" in body
                # The next two requests: one to 'b', one to the dead target (refused: 502).
                statuses = sorted([(await r.get("/x"))[0], (await r.get("/x"))[0]])
                assert statuses == [200, 502]

                assert await until(lambda: group.state("doomed") is TargetState.UNHEALTHY, 10)
                [snapshot] = [t for t in group.targets() if t.target_id == "doomed"]
                assert snapshot.reason.value == "Target.FailedHealthChecks"
                for _ in range(4):
                    assert (await r.get_json("/x"))["backend"] == "b"
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    run(test)


async def _malformed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers health checks properly and every other request with garbage."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET /health "):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            else:
                writer.write(b"THIS IS NOT HTTP\r\n\r\n")
                await writer.drain()
                writer.close()
                return
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def test_a_malformed_response_is_a_502():
    async def test():
        async with rig() as r:
            server = await asyncio.start_server(_malformed, "127.0.0.61", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                group = r.lb.group("api")
                group.register("garbage", "127.0.0.61", port)
                assert await until(lambda: group.state("garbage") is TargetState.HEALTHY)
                status, _, body = await r.get("/x")
                assert status == 502 and b"502 Bad Gateway" in body
            finally:
                server.close()
                await server.wait_closed()
    run(test)


def test_504_when_the_target_does_not_answer_within_the_idle_timeout():
    async def test():
        async with rig(idle_timeout=0.3) as r:
            backend = await r.backend("api", "a", "127.0.0.71")
            started = time.monotonic()
            status, headers, body = await r.get("/slow?seconds=3")
            elapsed = time.monotonic() - started
            assert status == 504
            assert b"<center><h1>504 Gateway Time-out</h1></center>" in body
            assert 0.3 <= elapsed < 2.5
            assert backend.slow_finished == 0
            assert (await r.get_json("/fast"))["backend"] == "a"  # the target is still in service
    run(test)


# ---------------------------------------------------------------- what is forwarded


def test_the_request_is_forwarded_with_the_albs_headers():
    async def test():
        async with rig() as r:
            await r.backend("api", "a", "127.0.0.81")
            body = os.urandom(3000)
            url = URL(r.lb.url + "/orders/%7Eid/items?b=2&a=%20x", encoded=True)  # sent as written
            async with r.client.post(url, data=body, headers={
                "Host": "internal-alb.local:8080", "X-Custom": "kept", "Connection": "keep-alive, X-Secret",
                "X-Secret": "hop-only", "X-Forwarded-For": "203.0.113.7",
            }) as response:
                assert response.status == 200
                echo = await response.json()
                assert response.headers["X-Backend"] == "a"
                assert response.headers["Set-Cookie"] == "backend=a"
            headers = {k.lower(): v for k, v in echo["headers"]}
            assert echo["method"] == "POST"
            assert echo["path"] == "/orders/%7Eid/items"
            assert echo["query"] == "b=2&a=%20x"
            assert echo["size"] == 3000 and echo["sha256"] == hashlib.sha256(body).hexdigest()
            assert headers["host"] == "internal-alb.local:8080"
            assert headers["x-custom"] == "kept"
            assert "x-secret" not in headers
            assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
            assert headers["x-forwarded-proto"] == "http"
            assert headers["x-forwarded-port"] == str(r.lb.port)
            assert TRACE_ROOT.fullmatch(headers["x-amzn-trace-id"])

            async with r.client.head(r.lb.url + "/echo") as response:  # no body, the length of one
                assert response.status == 200
                assert int(response.headers["Content-Length"]) > 0
                assert await response.read() == b""

            root = "Root=1-67891233-abcdef012345678912345678"
            echo = await r.get_json("/traced", headers={"X-Amzn-Trace-Id": root})
            trace = {k.lower(): v for k, v in echo["headers"]}["x-amzn-trace-id"]
            assert re.fullmatch(r"Self=1-[0-9a-f]{8}-[0-9a-f]{24};" + root, trace)
    run(test)



def test_with_tracing_the_alb_and_the_task_are_spans_and_the_target_gets_the_task_span_as_parent():
    async def test():
        sink = ListSink()
        async with rig(sink=sink) as r:
            await r.backend("api", "a", "127.0.0.1")
            root = "1-67891233-abcdef012345678912345678"
            echo = await r.get_json("/traced", headers={"X-Amzn-Trace-Id": f"Root={root};Parent=00000000000000aa"})
            forwarded = {k.lower(): v for k, v in echo["headers"]}["x-amzn-trace-id"]
            assert await until(lambda: len(sink.spans) == 2)
            task, alb = sink.spans
            assert (alb.component, alb.trace_id, alb.parent_id) == ("alb", root, "00000000000000aa")
            assert (task.component, task.parent_id) == ("ecs", alb.span_id)
            assert alb.attributes["service"] == task.attributes["service"] == "api"
            assert alb.attributes["status"] == task.attributes["status"] == 200 and not alb.failed
            assert alb.start <= task.start and task.end <= alb.end + 0.001
            assert re.fullmatch(rf"Self=1-[0-9a-f]{{8}}-[0-9a-f]{{24}};Root={root};Parent={task.span_id};Sampled=1",
                                forwarded)

            await r.backends["a"].stop()  # nothing listens any more: 502 (or 503 once unhealthy)
            status, _, _ = await r.get("/traced")
            assert status in (502, 503)
            assert await until(lambda: sink.spans[-1].component == "alb" and len(sink.spans) > 2)
            assert sink.spans[-1].failed and sink.spans[-1].attributes["status"] == status

            async def no_healthy_target() -> bool:  # the load balancer's own 503: one span of its own
                return (await r.get("/traced"))[0] == 503

            deadline = time.monotonic() + 5
            while not await no_healthy_target():
                assert time.monotonic() < deadline, "the stopped target never became unhealthy"
            assert sink.spans[-1].attributes["status"] == 503 and "service" not in sink.spans[-1].attributes
    run(test)


def test_each_request_is_an_aws_applicationelb_sample_with_the_targets_response_time():
    from devenv.compute.alb.metrics import AlbMetrics

    balancer = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/it-alb/50dc6c495c0c9188"
    samples = Samples()
    metrics = AlbMetrics(samples, balancer,
                         lambda name: f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/73e2d6bc24d8a067")

    async def test():
        services = {"api": service(), "empty": service(paths=["/empty/*"], priority=1)}
        async with rig(services, metrics=metrics) as r:
            await r.backend("api", "a", "127.0.0.86")
            assert (await r.get("/fast"))[0] == 200
            assert (await r.get("/slow?seconds=0.3"))[0] == 200
            assert (await r.get("/empty/x"))[0] == 503  # no target: the load balancer's own answer
    run(test)
    lb = {"LoadBalancer": "app/it-alb/50dc6c495c0c9188"}
    group = {**lb, "TargetGroup": "targetgroup/api/73e2d6bc24d8a067"}
    for dims in (lb, group):
        assert samples.of("RequestCount", **dims) == [1, 1]  # the 503 chose no target: AWS does not count it
        assert samples.of("HTTPCode_Target_2XX_Count", **dims) == [1, 1]
        fast, slow = samples.of("TargetResponseTime", **dims)
        assert 0 <= fast < slow and 0.3 <= slow < 5, (fast, slow)
    assert samples.of("HTTPCode_ELB_5XX_Count", **lb) == samples.of("HTTPCode_ELB_503_Count", **lb) == [1]
    assert {(n, u, d) for _, n, _, _, u, d in samples.samples if n == "TargetResponseTime"} == {
        ("TargetResponseTime", "Seconds", True)}


def test_healthy_and_unhealthy_host_counts_follow_the_targets_health():
    from devenv.compute.alb.health import TargetState
    from devenv.compute.alb.metrics import AlbMetrics

    samples = Samples()
    metrics = AlbMetrics(samples, "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/it/1",
                         lambda name: f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/2")
    group = {"LoadBalancer": "app/it/1", "TargetGroup": "targetgroup/api/2"}

    async def test():
        async with rig(metrics=metrics) as r:
            assert await until(lambda: samples.of("HealthyHostCount", **group) == [0])  # sampled once started
            await r.backend("api", "a", "127.0.0.87")
            await r.backend("api", "b", "127.0.0.88")
            r.lb.sample_health()
            assert samples.of("HealthyHostCount", **group)[-1] == 2
            assert samples.of("UnHealthyHostCount", **group)[-1] == 0
            await r.backends["b"].stop()
            assert await until(lambda: r.lb.group("api").state("b") is TargetState.UNHEALTHY, timeout=10)
            r.lb.sample_health()
            assert samples.of("HealthyHostCount", **group)[-1] == 1
            assert samples.of("UnHealthyHostCount", **group)[-1] == 1
    run(test)
    assert {u for _, n, _, _, u, d in samples.samples if n.endswith("HostCount") and not d} == {"Count"}


def test_large_bodies_stream_both_ways():
    async def test():
        async with rig() as r:
            await r.backend("api", "a", "127.0.0.82")
            size = 5 * 1024 * 1024
            data = os.urandom(size)

            async def chunks():  # no Content-Length: chunked upload
                for offset in range(0, size, 256 * 1024):
                    yield data[offset:offset + 256 * 1024]
            async with r.client.put(r.lb.url + "/upload", data=chunks()) as response:
                echo = await response.json()
            assert echo["size"] == size and echo["sha256"] == hashlib.sha256(data).hexdigest()

            async with r.client.put(r.lb.url + "/upload", data=io.BytesIO(data)) as response:  # Content-Length
                assert (await response.json())["size"] == size

            async with r.client.get(r.lb.url + f"/bytes?n={size}") as response:
                assert response.status == 200
                assert len(await response.read()) == size
    run(test)


def test_a_response_is_streamed_not_buffered():
    async def test():
        async with rig() as r:
            backend = await r.backend("api", "a", "127.0.0.83")
            async with r.client.get(r.lb.url + "/stream") as response:
                first = await asyncio.wait_for(response.content.readline(), 5)
                assert first == b"first chunk\n"  # while the backend still holds the rest
                backend.release.set()
                assert await response.read() == b"last chunk\n"
    run(test)


def test_keep_alive_connections_to_targets_are_reused():
    async def test():
        async with rig() as r:
            backend = await r.backend("api", "a", "127.0.0.84")
            for _ in range(50):
                await r.get_json("/x")
            assert len(backend.requests) == 50
            assert len(backend.peers) == 1  # one pooled connection for 50 sequential requests

            await asyncio.gather(*(r.get_json("/y") for _ in range(40)))
            assert len(backend.peers) <= 41
    run(test)


# ---------------------------------------------------------------- draining


def test_draining_lets_an_in_flight_request_finish_while_new_requests_go_elsewhere():
    async def test():
        async with rig({"api": service(deregistration_delay=30)}) as r:
            a = await r.backend("api", "a", "127.0.0.91")
            await r.backend("api", "b", "127.0.0.92")
            group = r.lb.group("api")
            slow = asyncio.ensure_future(r.get_json("/slow?seconds=1"))  # round robin: to 'a'
            assert await until(lambda: group.in_flight("a") == 1)

            started = time.monotonic()
            done = asyncio.ensure_future(group.deregister("a"))
            assert group.state("a") is TargetState.DRAINING
            for _ in range(4):
                assert (await r.get_json("/x"))["backend"] == "b"
            assert not done.done()

            assert (await slow) == {"backend": "a", "slow": True}
            await asyncio.wait_for(done, 5)
            assert time.monotonic() - started < 5  # well before the 30 s delay
            assert group.state("a") is TargetState.UNUSED
            assert a.slow_finished == 1
    run(test)


def test_the_deregistration_delay_cuts_a_request_still_in_flight_with_502():
    async def test():
        async with rig({"api": service(deregistration_delay=0.3)}) as r:
            await r.backend("api", "a", "127.0.0.93")
            group = r.lb.group("api")
            slow = asyncio.ensure_future(r.get("/slow?seconds=10"))
            assert await until(lambda: group.in_flight("a") == 1)
            started = time.monotonic()
            await asyncio.wait_for(group.deregister("a"), 5)
            assert 0.3 <= time.monotonic() - started < 2
            status, _, body = await asyncio.wait_for(slow, 5)
            assert status == 502 and b"502 Bad Gateway" in body
            assert group.state("a") is TargetState.UNUSED
            assert (await r.get("/x"))[0] == 503  # nothing left to send to
    run(test)
