"""HTTP/2 and gRPC through the ALB with real sockets: h2c clients (a small one on the ``h2``
library, and grpcio's) to HTTP1 target groups of aiohttp backends and to GRPC target groups of
grpcio servers (``tests/fixtures/services/grpc/app.py``, in-process), each on its own
127.0.0.x address. Tests wait on conditions with deadlines, never on fixed sleeps."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events

from devenv.compute.alb.health import Reason, TargetState
from tests.integration.alb.test_load_balancer import rig, run, service, until
from tests.integration.alb.test_target_groups import sticky_groups

APP = Path(__file__).resolve().parents[2] / "fixtures" / "services" / "grpc" / "app.py"
_spec = importlib.util.spec_from_file_location("grpc_fixture_app", APP)
assert _spec is not None and _spec.loader is not None
echo_app = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(echo_app)

ECHO = "/devenv.test.Echo/"


def grpc_service(**overrides: Any):
    return service(**{"paths": ["/devenv.test.Echo/*"], "protocol_version": "GRPC",
                      "health_check": {"interval": 0.1, "timeout": 0.5, "healthy_threshold": 2,
                                       "unhealthy_threshold": 2},
                      **overrides})


class H2Answer:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.header_list: list[tuple[bytes, bytes]] = []  # as sent: repeated ones (set-cookie) kept
        self.body = b""
        self.trailers: dict[bytes, bytes] = {}
        self.reset: int | None = None

    @property
    def status(self) -> int:
        return int(self.headers[b":status"])


async def h2_requests(port: int, requests: list[tuple[str, str, list, bytes]]) -> list[H2Answer]:
    """Sends ``(method, path, headers, body)`` requests as concurrent streams of one h2c
    connection, bodies within the flow-control windows; returns the answers in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    answers: dict[int, H2Answer] = {}
    bodies: dict[int, memoryview] = {}
    order = []
    for method, path, headers, body in requests:
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(stream_id, [(":method", method), (":scheme", "http"), (":path", path),
                                      (":authority", "internal-alb.local"), *headers], end_stream=not body)
        answers[stream_id] = H2Answer()
        order.append(stream_id)
        if body:
            bodies[stream_id] = memoryview(body)
    done: set[int] = set()

    def send_bodies() -> None:
        for stream_id, rest in list(bodies.items()):
            while rest:
                size = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size, len(rest))
                if size <= 0:
                    break
                conn.send_data(stream_id, bytes(rest[:size]), end_stream=size == len(rest))
                rest = rest[size:]
            bodies[stream_id] = rest
            if not rest:
                del bodies[stream_id]

    async def exchange() -> None:
        send_bodies()
        writer.write(conn.data_to_send())
        while len(done) < len(order):
            data = await reader.read(65536)
            assert data, "the load balancer closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    answers[event.stream_id].headers = dict(event.headers)
                    answers[event.stream_id].header_list = list(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    answers[event.stream_id].body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.TrailersReceived):
                    answers[event.stream_id].trailers = dict(event.headers)
                elif isinstance(event, h2.events.StreamEnded):
                    done.add(event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    answers[event.stream_id].reset = event.error_code
                    done.add(event.stream_id)
            send_bodies()
            writer.write(conn.data_to_send())

    try:
        await asyncio.wait_for(exchange(), 20)
    finally:
        writer.close()
    return [answers[stream_id] for stream_id in order]


async def h2_get(port: int, path: str, headers: list | None = None) -> H2Answer:
    return (await h2_requests(port, [("GET", path, headers or [], b"")]))[0]


def echo_servers(r, *names_and_hosts: tuple[str, str], group: str = "echo", healthy: bool = True):
    """Starts in-process gRPC echo servers and registers them with ``group``."""
    async def start():
        servers = []
        for name, host in names_and_hosts:
            server, port = echo_app.serve(host, 0, name)
            servers.append(server)
            r.lb.group(group).register(name, host, port)
        if healthy:
            for name, _ in names_and_hosts:
                assert await until(lambda: r.lb.group(group).state(name) is TargetState.HEALTHY)
        return servers
    return start()


def stop_all(servers) -> None:
    for server in servers:
        server.stop(None)


# ---------------------------------------------------------------- HTTP/2 to HTTP1 target groups


def test_http2_streams_reach_http1_targets_as_http1_requests():
    async def test():
        async with rig() as r:
            await r.backend("api", "a", "127.0.0.41")
            await r.backend("api", "b", "127.0.0.42")
            big = os.urandom(1 << 20)  # 1 MiB each way: flow control on both sides
            answers = await h2_requests(r.lb.port, [
                ("GET", "/orders?x=1", [("x-forwarded-for", "10.1.2.3")], b""),
                ("POST", "/upload", [("content-type", "application/octet-stream")], big),
                ("GET", "/bytes?n=1048576", [], b""),
                ("HEAD", "/orders", [], b""),
            ])
            get, post, download, head = answers
            assert get.status == 200 and get.headers[b"x-backend"] in (b"a", b"b")
            echoed = json.loads(get.body)
            assert echoed["method"] == "GET" and echoed["path"] == "/orders" and echoed["query"] == "x=1"
            sent = {name.lower(): value for name, value in echoed["headers"]}
            assert sent["x-forwarded-for"] == "10.1.2.3, 127.0.0.1" and sent["host"] == "internal-alb.local"
            assert sent["x-forwarded-proto"] == "http" and sent["x-amzn-trace-id"].startswith("Root=1-")
            assert post.status == 200
            assert json.loads(post.body)["sha256"] == hashlib.sha256(big).hexdigest()  # sent on chunked
            assert download.status == 200 and download.body == b"x" * (1 << 20)
            assert head.status == 200 and head.body == b""
            assert {json.loads(get.body)["backend"], json.loads(post.body)["backend"]} == {"a", "b"}  # round robin
    run(test)


def test_the_load_balancers_own_answers_go_back_on_the_stream():
    async def test():
        async with rig() as r:
            missing = await h2_get(r.lb.port, "/nothing")
            assert missing.status == 503  # the only rule is /*, and nothing is registered
            trace = (await h2_requests(r.lb.port, [("TRACE", "/x", [], b"")]))[0]
            assert trace.status == 405 and trace.headers[b"server"] == b"awselb/2.0"
    run(test)


# ---------------------------------------------------------------- 464: a request its target group does not take


def test_requests_a_target_group_does_not_take_are_answered_464():
    async def test():
        services = {"api": service(paths=["/api/*"], priority=1), "echo": grpc_service(priority=2)}
        async with rig(services) as r:
            await r.backend("api", "a", "127.0.0.43")
            servers = await echo_servers(r, ("g", "127.0.0.44"))
            try:
                status, _, _ = await r.get(ECHO + "Say")  # HTTP/1.1 to a GRPC target group
                assert status == 464
                assert (await h2_get(r.lb.port, ECHO + "Say")).status == 464  # HTTP/2, but not gRPC
                grpc_to_http1 = (await h2_requests(r.lb.port, [("POST", "/api/x", [
                    ("content-type", "application/grpc"), ("te", "trailers")], b"\x00\x00\x00\x00\x00")]))[0]
                assert grpc_to_http1.status == 464
                assert (await h2_get(r.lb.port, "/api/x")).status == 200  # plain HTTP/2 to HTTP1 is fine
            finally:
                stop_all(servers)
    run(test)


# ---------------------------------------------------------------- gRPC through a GRPC target group


def test_http2_streams_get_the_stickiness_cookies_and_keep_to_their_group_and_task():
    async def test():
        async with sticky_groups(71) as r:
            first = await h2_get(r.lb.port, "/shop/cart")
            cookies = [value.decode() for name, value in first.header_list
                       if name == b"set-cookie" and value.startswith(b"AWSALB")]  # the task sets one of its own
            assert [c.split("=", 1)[0] for c in cookies] == ["AWSALBTG", "AWSALBTGCORS", "AWSALB", "AWSALBCORS"]
            jar = "; ".join(c.split(";", 1)[0] for c in cookies if "CORS=" not in c)
            backend = json.loads(first.body)["backend"]
            again = await h2_requests(r.lb.port, [("GET", "/shop/cart", [("cookie", jar)], b"")] * 8)
            assert {json.loads(answer.body)["backend"] for answer in again} == {backend}
            spread = await h2_requests(r.lb.port, [("GET", "/shop/cart", [], b"")] * 8)  # no cookie: by weight
            assert sorted(json.loads(a.body)["backend"].split("-")[0] for a in spread) == ["blue"] * 4 + ["green"] * 4
    run(test)


def call(port: int, method: str, request: bytes, *, stream: bool = False, timeout: float = 10):
    """A gRPC call with grpcio's own client (blocking: run it off the event loop)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        if stream:
            return list(channel.unary_stream(ECHO + method)(request, timeout=timeout))
        return channel.unary_unary(ECHO + method)(request, timeout=timeout)


def drip(port: int, count: bytes) -> tuple[list[bytes], grpc.RpcError | None]:
    """The messages of a streaming call that fails after them, and its error."""
    received: list[bytes] = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            for message in channel.unary_stream(ECHO + "Drip")(count, timeout=10):
                received.append(message)
        except grpc.RpcError as error:
            return received, error
    return received, None


def test_grpc_calls_pass_through_with_their_status_and_trailers():
    async def test():
        async with rig({"echo": grpc_service()}) as r:
            servers = await echo_servers(r, ("a", "127.0.0.45"), ("b", "127.0.0.46"))
            try:
                group = r.lb.group("echo")
                [a] = [t for t in group.targets() if t.target_id == "a"]
                assert a.reason is None and a.consecutive_successes >= 1  # UNIMPLEMENTED (12) is healthy
                port = r.lb.port
                answers = {await asyncio.to_thread(call, port, "Say", b"hi") for _ in range(4)}
                assert answers == {b"a: hi", b"b: hi"}
                streamed = await asyncio.to_thread(call, port, "Count", b"5", stream=True)
                assert len(streamed) == 5 and streamed[0][:3] in (b"a: ", b"b: ")
                assert [m[3:] for m in streamed] == [b"0", b"1", b"2", b"3", b"4"]
                try:
                    await asyncio.to_thread(call, port, "Missing", b"thing")
                    raise AssertionError("the call should have failed")
                except grpc.RpcError as error:
                    assert error.code() is grpc.StatusCode.NOT_FOUND
                    assert error.details() == "no thing here"
                    assert ("x-detail", "looked everywhere") in tuple(error.trailing_metadata())
                received, error = await asyncio.to_thread(drip, port, b"3")  # the status in trailers, after data
                assert [m[3:] for m in received] == [b"0", b"1", b"2"]
                assert error is not None and error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert error.details() == "dry after 3"
                assert await until(lambda: group.in_flight("a") == 0 and group.in_flight("b") == 0)
            finally:
                stop_all(servers)
    run(test)


def chat(port: int, messages: list[bytes]) -> list[bytes]:
    """A bidirectional call: each message sent only after the answer to the one before came
    back through the load balancer."""
    answers: list[bytes] = []
    ready = threading.Event()
    ready.set()

    def requests():
        for message in messages:
            assert ready.wait(10), "no answer to the message before"
            ready.clear()
            yield message

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        for answer in channel.stream_stream(ECHO + "Chat")(requests(), timeout=10):
            answers.append(answer)
            ready.set()
    return answers


def test_a_bidirectional_grpc_stream_goes_both_ways_as_it_comes():
    async def test():
        async with rig({"echo": grpc_service()}) as r:
            servers = await echo_servers(r, ("a", "127.0.0.51"))
            try:
                big = os.urandom(200_000)  # beyond a stream's initial 64 KiB window, both ways
                answers = await asyncio.to_thread(chat, r.lb.port, [b"one", big, b"three"])
                assert answers == [b"a: one", b"a: " + big, b"a: three"]
            finally:
                stop_all(servers)
    run(test)


def test_grpc_health_checks_match_grpc_status_codes():
    async def test():
        services = {
            "echo": grpc_service(priority=1, health_check={"path": ECHO + "Say", "matcher": "0", "interval": 0.1,
                                                            "timeout": 0.5, "healthy_threshold": 2,
                                                            "unhealthy_threshold": 2}),
            "broken": grpc_service(priority=2, paths=["/other/*"],
                                   health_check={"path": ECHO + "Missing", "matcher": "0-4", "interval": 0.1,
                                                 "timeout": 0.5, "healthy_threshold": 2, "unhealthy_threshold": 2}),
        }
        async with rig(services) as r:
            servers = await echo_servers(r, ("ok", "127.0.0.47"))
            servers += await echo_servers(r, ("bad", "127.0.0.48"), group="broken", healthy=False)
            try:
                broken = r.lb.group("broken")
                assert await until(lambda: broken.state("bad") is TargetState.UNHEALTHY)
                [bad] = broken.targets()
                assert bad.reason is Reason.RESPONSE_CODE_MISMATCH
                assert bad.description == "Health checks failed with these codes: [5]"  # NOT_FOUND
                assert r.lb.group("echo").state("ok") is TargetState.HEALTHY  # OK (0) matched
            finally:
                stop_all(servers)
    run(test)


def test_a_grpc_call_to_a_target_that_is_gone_is_unavailable():
    async def test():
        async with rig({"echo": grpc_service()}) as r:
            servers = await echo_servers(r, ("a", "127.0.0.49"))
            stop_all(servers)  # healthy a moment ago; the next call finds nothing listening
            try:
                await asyncio.to_thread(call, r.lb.port, "Say", b"hi")
                raise AssertionError("the call should have failed")
            except grpc.RpcError as error:
                assert error.code() is grpc.StatusCode.UNAVAILABLE  # the load balancer's 502 (or 503)
    run(test)


def test_http2_and_grpc_requests_are_applicationelb_samples_too():
    from devenv.compute.alb.metrics import AlbMetrics
    from tests.support import Samples

    samples = Samples()
    metrics = AlbMetrics(samples, "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/h2/1",
                         lambda name: f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/2")

    async def test():
        async with rig(metrics=metrics) as r:
            await r.backend("api", "a", "127.0.0.47")
            assert (await h2_get(r.lb.port, "/orders")).status == 200  # an HTTP1 target group
        async with rig({"echo": grpc_service()}, metrics=metrics) as r:
            servers = await echo_servers(r, ("a", "127.0.0.48"))
            try:
                assert await asyncio.to_thread(call, r.lb.port, "Say", b"hi") == b"a: hi"  # a GRPC one
            finally:
                stop_all(servers)
    run(test)
    for group in ("api", "echo"):
        dims = {"LoadBalancer": "app/h2/1", "TargetGroup": f"targetgroup/{group}/2"}
        assert samples.of("RequestCount", **dims) == [1]
        [seconds] = samples.of("TargetResponseTime", **dims)
        assert 0 <= seconds < 5
        assert samples.of("HTTPCode_Target_2XX_Count", **dims) == [1]


# ---------------------------------------------------------------- HTTP2 target groups: h2c to the targets


class H2Target(asyncio.Protocol):
    """A small h2c server standing in for a task of an HTTP2 target group: ``GET /health`` is
    200, ``GET /bytes?n=N`` N bytes, anything else the request echoed as JSON (method, path,
    headers, body size and sha256, the target's name); answers within the client's windows."""

    def __init__(self, name: str, seen: list[dict]) -> None:
        self.name = name
        self.seen = seen
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        self.requests: dict[int, dict] = {}
        self.pending: dict[int, memoryview] = {}

    def connection_made(self, transport):
        self.transport = transport
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def data_received(self, data):
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.requests[event.stream_id] = {"headers": dict(event.headers), "digest": hashlib.sha256(),
                                                  "size": 0}
            elif isinstance(event, h2.events.DataReceived):
                request = self.requests[event.stream_id]
                request["digest"].update(event.data)
                request["size"] += len(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.respond(event.stream_id)
        self.pump()
        self.transport.write(self.conn.data_to_send())

    def respond(self, stream_id):
        request = self.requests.pop(stream_id)
        headers = request["headers"]
        path = headers[b":path"].decode()
        if path == "/health":
            body = b"ok"
        elif path.startswith("/bytes?n="):
            body = b"y" * int(path.partition("=")[2])
        else:
            self.seen.append(headers)
            body = json.dumps({"backend": self.name, "method": headers[b":method"].decode(), "path": path,
                               "headers": {k.decode(): v.decode() for k, v in headers.items()},
                               "size": request["size"], "sha256": request["digest"].hexdigest()}).encode()
        self.conn.send_headers(stream_id, [(":status", "200"), ("x-backend", self.name)])
        self.pending[stream_id] = memoryview(body)

    def pump(self):
        for stream_id, rest in list(self.pending.items()):
            while rest:
                size = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size,
                           len(rest))
                if size <= 0:
                    break
                self.conn.send_data(stream_id, bytes(rest[:size]))
                rest = rest[size:]
            self.pending[stream_id] = rest
            if not rest:
                self.conn.end_stream(stream_id)
                del self.pending[stream_id]


def test_an_http2_target_group_talks_h2c_to_its_targets():
    async def test():
        services = {"web": service(protocol_version="HTTP2")}  # health check: GET /health over h2c, 200
        async with rig(services) as r:
            seen: list[dict] = []
            loop = asyncio.get_running_loop()
            server = await loop.create_server(lambda: H2Target("h", seen), "127.0.0.50", 0)
            try:
                r.lb.group("web").register("h", "127.0.0.50", server.sockets[0].getsockname()[1])
                assert await until(lambda: r.lb.group("web").state("h") is TargetState.HEALTHY)
                big = os.urandom(1 << 20)  # 1 MiB each way: the upstream connection's flow control too
                get, post, download = await h2_requests(r.lb.port, [
                    ("GET", "/orders?x=1", [("x-forwarded-for", "10.1.2.3")], b""),
                    ("POST", "/upload", [], big),
                    ("GET", "/bytes?n=1048576", [], b""),
                ])
                echoed = json.loads(get.body)
                assert get.status == 200 and echoed["backend"] == "h" and echoed["path"] == "/orders?x=1"
                assert echoed["headers"][":authority"] == "internal-alb.local"
                assert echoed["headers"]["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
                assert echoed["headers"]["x-amzn-trace-id"].startswith("Root=1-")
                assert json.loads(post.body)["sha256"] == hashlib.sha256(big).hexdigest()
                assert download.body == b"y" * (1 << 20)
                status, _, _ = await r.get("/orders")  # HTTP/1.1 to an HTTP2 target group
                assert status == 464
                assert await until(lambda: r.lb.group("web").in_flight("h") == 0)
            finally:
                server.close()
    run(test)
