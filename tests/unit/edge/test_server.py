"""The edge end to end in one process: an HTTPS listener with the stack's generated CA in
front of an in-memory origin (aiohttp), a clock the test moves."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from devenv.config.model import EdgeConfig
from devenv.edge.certs import EdgeFiles, ensure_certificates, server_context
from devenv.edge.server import Edge, EdgeServer
from devenv.observe.trace_context import TraceContext
from devenv.runtime.guard import edge_policy
from devenv.runtime.statedir import StateDir
from tests.support import ListSink


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Origin:
    """The API Gateway stage stand-in: answers per path, records what it was sent."""

    def __init__(self) -> None:
        self.seen: list[web.Request] = []
        self.bodies: list[bytes] = []
        self.answers: dict[str, Callable[[web.Request], web.Response]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request)
        self.bodies.append(await request.read())
        answer = self.answers.get(request.path)
        if answer is None:
            return web.json_response({"message": "not found"}, status=404)
        return answer(request)

    def calls(self, path: str) -> int:
        return sum(1 for r in self.seen if r.path == path)


EDGE = {"behaviors": [{"path_pattern": "/static/*", "allowed_methods": ["GET", "HEAD"], "default_ttl": 60}],
        "default_behavior": {"default_ttl": 0, "cache_key": {"query_strings": "all"}}}


def run(scenario):
    asyncio.run(scenario)


@contextlib.asynccontextmanager
async def serving(tmp_path, origin: Origin, clock: Clock, config: dict = EDGE, sink=None):
    """The origin on a loopback port, the edge in front of it (origin path /local), and a
    client session that trusts only the stack's CA; yields (session, edge URL, origin server)."""
    origin_server = TestServer(web.Application(), port=None)
    origin_server.app.router.add_route("*", "/{path:.*}", origin.handle)
    await origin_server.start_server()
    files = ensure_certificates(EdgeFiles(StateDir(tmp_path / ".devenv")), "demo", "demo.localhost")
    edge = Edge(EdgeConfig.model_validate(config), origin=f"http://127.0.0.1:{origin_server.port}",
                origin_path="/local", monotonic=clock, sink=sink, guard=edge_policy("demo.localhost"))
    server = EdgeServer(edge, server_context(files))
    port = await server.start()
    trust = ssl.create_default_context(cafile=str(files.ca_cert))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust))
    try:
        yield session, f"https://127.0.0.1:{port}", origin_server
    finally:
        await session.close()
        await server.stop()
        await origin_server.close()


def test_a_cacheable_answer_is_a_miss_then_a_hit_with_age(tmp_path):
    async def scenario():
        origin, clock = Origin(), Clock()
        origin.answers["/local/videos"] = lambda r: web.json_response({"n": len(origin.seen)},
                                                                       headers={"Cache-Control": "max-age=30"})
        async with serving(tmp_path, origin, clock) as (session, url, origin_server):
            async with session.get(url + "/videos") as first:
                assert first.status == 200 and await first.json() == {"n": 1}
                assert first.headers["X-Cache"] == "Miss from cloudfront" and "Age" not in first.headers
                assert first.headers["Via"].endswith(".cloudfront.net (CloudFront)")
                assert first.headers["Via"].startswith("1.1 ")
                assert first.headers["X-Amz-Cf-Pop"] and len(first.headers["X-Amz-Cf-Id"]) == 56
            clock.now += 3.2
            async with session.get(url + "/videos") as second:
                assert await second.json() == {"n": 1}
                assert second.headers["X-Cache"] == "Hit from cloudfront" and second.headers["Age"] == "3"
                assert second.headers["X-Amz-Cf-Id"] != first.headers["X-Amz-Cf-Id"]
            async with session.head(url + "/videos") as head:
                assert head.headers["X-Cache"] == "Hit from cloudfront"
                assert int(head.headers["Content-Length"]) == len(b'{"n": 1}')
            async with session.get(url + "/videos?page=2") as other:  # the query is in this key
                assert other.headers["X-Cache"] == "Miss from cloudfront"
            clock.now += 30
            async with session.get(url + "/videos") as expired:
                assert expired.headers["X-Cache"] == "Miss from cloudfront" and await expired.json() == {"n": 3}
            assert origin.calls("/local/videos") == 3

    run(scenario())


def test_no_store_and_post_are_never_cached(tmp_path):
    async def scenario():
        origin, clock = Origin(), Clock()
        origin.answers["/local/me"] = lambda r: web.json_response({}, headers={"Cache-Control": "no-store, max-age=60"})
        origin.answers["/local/placements"] = lambda r: web.json_response({}, status=201)
        async with serving(tmp_path, origin, clock) as (session, url, origin_server):
            for _ in range(2):
                async with session.get(url + "/me") as answer:
                    assert answer.headers["X-Cache"] == "Miss from cloudfront"
                async with session.post(url + "/placements", json={"a": 1},
                                        headers={"Cookie": "s=1", "X-Forwarded-For": "10.1.1.1",
                                                 "X-Name": "café"}) as posted:
                    assert posted.status == 201 and posted.headers["X-Cache"] == "Miss from cloudfront"
            assert origin.calls("/local/me") == 2 and origin.calls("/local/placements") == 2
            sent = origin.seen[-1]
            assert origin.bodies[-1] == b'{"a": 1}'
            assert sent.headers["Cookie"] == "s=1" and sent.headers["X-Forwarded-For"] == "10.1.1.1, 127.0.0.1"
            assert sent.headers["X-Name"] == "café"  # the viewer's bytes, not re-encoded
            assert sent.headers["Via"].endswith("(CloudFront)") and len(sent.headers["X-Amz-Cf-Id"]) == 56
            assert sent.headers["Host"].startswith("127.0.0.1:")  # the origin's own host, not the viewer's

    run(scenario())


def test_a_stale_entry_with_an_etag_is_revalidated(tmp_path):
    async def scenario():
        origin, clock = Origin(), Clock()

        def report(request):
            if request.headers.get("If-None-Match") == '"v1"':
                return web.Response(status=304, headers={"ETag": '"v1"', "Cache-Control": "max-age=10"})
            return web.json_response({"v": 1}, headers={"ETag": '"v1"', "Cache-Control": "max-age=10"})

        origin.answers["/local/report"] = report
        async with serving(tmp_path, origin, clock) as (session, url, origin_server):
            async with session.get(url + "/report") as first:
                assert first.headers["X-Cache"] == "Miss from cloudfront"
            clock.now += 11
            async with session.get(url + "/report") as refreshed:
                assert refreshed.status == 200 and await refreshed.json() == {"v": 1}
                assert refreshed.headers["X-Cache"] == "RefreshHit from cloudfront"
            async with session.get(url + "/report") as hit:
                assert hit.headers["X-Cache"] == "Hit from cloudfront"
            assert origin.calls("/local/report") == 2

    run(scenario())


def test_errors_and_methods_the_behaviour_refuses(tmp_path):
    async def scenario():
        origin, clock = Origin(), Clock()
        async with serving(tmp_path, origin, clock) as (session, url, origin_server):
            for expected in ("Error from cloudfront", "Hit from cloudfront"):  # a 404 is cached 10 s
                async with session.get(url + "/missing") as missing:
                    assert missing.status == 404 and missing.headers["X-Cache"] == expected
            assert origin.calls("/local/missing") == 1
            async with session.post(url + "/static/a.css") as refused:
                assert refused.status == 403 and refused.headers["X-Cache"] == "Error from cloudfront"
                assert "not configured to allow the HTTP request method" in await refused.text()
            assert origin.calls("/local/static/a.css") == 0

    run(scenario())


def test_an_origin_that_is_gone_is_a_502(tmp_path):
    async def scenario():
        origin, clock = Origin(), Clock()
        async with serving(tmp_path, origin, clock) as (session, url, origin_server):
            await origin_server.close()
            async with session.get(url + "/videos") as answer:
                assert answer.status == 502 and answer.headers["X-Cache"] == "Error from cloudfront"
                assert "wasn't able to connect to the origin" in await answer.text()

    run(scenario())


def test_a_client_that_does_not_trust_the_ca_is_refused(tmp_path):
    async def scenario():
        origin, clock = Origin(), Clock()
        async with serving(tmp_path, origin, clock) as (session, url, origin_server):
            async with aiohttp.ClientSession() as untrusting:
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    await untrusting.get(url + "/videos")

    run(scenario())


def test_each_request_is_an_edge_span_the_stage_continues(tmp_path):
    async def scenario():
        origin, clock, sink = Origin(), Clock(), ListSink()
        origin.answers["/local/videos"] = lambda r: web.json_response({}, headers={"Cache-Control": "max-age=30"})
        async with serving(tmp_path, origin, clock, sink=sink) as (session, url, _):
            root = "1-5f84c7a1-0123456789abcdef01234567"
            for _ in range(2):
                async with session.get(url + "/videos", headers={"X-Amzn-Trace-Id": f"Root={root}"}) as answer:
                    assert answer.status == 200
        first, second = sink.spans
        assert (first.component, first.operation, first.trace_id) == ("edge", "GET /videos", root)
        assert (first.attributes["cache"], second.attributes["cache"]) == ("Miss", "Hit")
        sent = TraceContext.from_headers(origin.seen[0].headers)
        assert (sent.root, sent.parent) == (root, first.span_id)  # the stage's span hangs under the edge's
        assert len(origin.seen) == 1

    run(scenario())


def test_a_rebinding_host_and_another_sites_requests_never_reach_the_origin(tmp_path):
    async def scenario():
        origin, clock = Origin(), Clock()
        origin.answers["/local/orders"] = lambda r: web.json_response({"ok": True})
        async with serving(tmp_path, origin, clock) as (session, url, origin_server):
            hostile = [("GET", {"Host": "evil.example"}, "DNS-rebinding"),
                       ("GET", {"Host": "other.localhost"}, "DNS-rebinding"),
                       ("POST", {"Origin": "https://evil.example", "Content-Type": "text/plain"}, "cross-site"),
                       ("OPTIONS", {"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
                        "cross-site")]
            for method, headers, why in hostile:
                async with session.request(method, url + "/orders", headers=headers) as answer:
                    assert answer.status == 403 and why in (await answer.json())["message"], (method, headers)
                    assert "Access-Control-Allow-Origin" not in answer.headers
            assert origin.seen == []
            for host in ("demo.localhost", "localhost", None):  # its own names, and a link from elsewhere
                headers = {"Sec-Fetch-Site": "cross-site", **({"Host": host} if host else {})}
                async with session.get(url + "/orders", headers=headers) as answer:
                    assert answer.status == 200 and await answer.json() == {"ok": True}, host
            async with session.post(url + "/orders", headers={"Origin": "https://demo.localhost:8443"}) as answer:
                assert answer.status == 200  # a page of the application itself
            assert origin.calls("/local/orders") == 4
    run(scenario())
