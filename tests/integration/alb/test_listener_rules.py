"""Listener rules through the real ALB: one test per condition type and per action, with
aiohttp backends as the target groups (``tests.integration.alb.backend``) and a real client."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import aiohttp

from tests.integration.alb.test_load_balancer import Rig, rig, run, service


@contextlib.asynccontextmanager
async def two_groups(special: dict[str, Any] | None = None, rules: list[dict] | None = None) -> AsyncIterator[Rig]:
    """Target group ``special`` (its rule's conditions: ``special``, priority 10) and
    ``fallback`` (every path, priority 50000), one backend each."""
    services = {"fallback": service(paths=["/*"], priority=50000)}
    if special is not None:
        services["special"] = service(priority=10, **special)
    elif rules:
        services["special"] = service(paths=["/never-routed-by-its-own-rule"], priority=49999)
    async with rig(services, rules=rules) as r:
        await r.backend("fallback", "fallback", "127.0.0.31")
        await r.backend("special", "special", "127.0.0.32")
        yield r


async def backend(r: Rig, path: str, **kwargs: Any) -> str:
    return (await r.get_json(path, **kwargs))["backend"]


def test_a_host_condition():
    async def test():
        async with two_groups({"hosts": ["*.special.local"]}) as r:
            assert await backend(r, "/x", headers={"Host": "api.Special.local:81"}) == "special"
            assert await backend(r, "/x", headers={"Host": "internal-alb.local"}) == "fallback"
    run(test)


def test_a_path_condition():
    async def test():
        async with two_groups({"paths": ["/v?/special/*"]}) as r:
            assert await backend(r, "/v2/special/a/b") == "special"
            assert await backend(r, "/v10/special/a") == "fallback"
            assert await backend(r, "/x?/v2/special/a") == "fallback"  # the query is not the path
    run(test)


def test_an_http_header_condition():
    async def test():
        async with two_groups({"headers": {"X-Canary": ["yes", "1"], "User-Agent": "*mobile*"}}) as r:
            assert await backend(r, "/x", headers={"X-Canary": "YES", "User-Agent": "a Mobile b"}) == "special"
            assert await backend(r, "/x", headers={"X-Canary": "YES", "User-Agent": "curl"}) == "fallback"
            assert await backend(r, "/x", headers={"User-Agent": "mobile"}) == "fallback"
    run(test)


def test_a_request_method_condition():
    async def test():
        async with two_groups({"methods": ["POST", "PUT"]}) as r:
            async with r.client.post(r.lb.url + "/x", data=b"body") as response:
                assert (await response.json())["backend"] == "special"
            assert await backend(r, "/x") == "fallback"
    run(test)


def test_a_query_string_condition():
    async def test():
        async with two_groups({"query": {"version": "v2*"}}) as r:
            assert await backend(r, "/x?a=1&VERSION=v2beta") == "special"
            assert await backend(r, "/x?version=%76%32") == "special"  # percent-decoded
            assert await backend(r, "/x?version=v1") == "fallback"
            assert await backend(r, "/x") == "fallback"
    run(test)


def test_a_source_ip_condition():
    async def test():
        async with two_groups({"source_ips": ["127.0.0.77/32"]}) as r:
            assert await backend(r, "/x") == "fallback"  # from 127.0.0.1
            connector = aiohttp.TCPConnector(local_addr=("127.0.0.77", 0))
            async with aiohttp.ClientSession(connector=connector) as client:
                async with client.get(r.lb.url + "/x", headers={"X-Forwarded-For": "10.0.0.1"}) as response:
                    assert (await response.json())["backend"] == "special"
            connector = aiohttp.TCPConnector(local_addr=("127.0.0.78", 0))
            async with aiohttp.ClientSession(connector=connector) as client:
                async with client.get(r.lb.url + "/x", headers={"X-Forwarded-For": "127.0.0.77"}) as response:
                    assert (await response.json())["backend"] == "fallback"  # the peer, not the header
    run(test)


def test_a_weighted_forward_action():
    async def test():
        rules = [{"priority": 5, "paths": ["/split/*"], "forward": {"special": 3, "fallback": 1}},
                 {"priority": 6, "paths": ["/none/*"], "forward": {"special": 0, "fallback": 0}}]
        async with two_groups(rules=rules) as r:
            seen = [await backend(r, "/split/x") for _ in range(8)]
            assert seen.count("special") == 6 and seen.count("fallback") == 2
            assert (await r.get("/none/x"))[0] == 503  # weight 0: no target group to send to
    run(test)


def test_a_fixed_response_action():
    async def test():
        rules = [{"priority": 5, "paths": ["/maintenance"], "methods": ["GET"],
                  "fixed_response": {"status_code": 503, "content_type": "application/json",
                                     "message_body": '{"down": true}'}}]
        async with two_groups(rules=rules) as r:
            status, headers, body = await r.get("/maintenance")
            assert (status, body) == (503, b'{"down": true}')
            assert headers["Content-Type"] == "application/json" and headers["Server"] == "awselb/2.0"
            assert r.backends["fallback"].requests == [] and r.backends["special"].requests == []
            assert await backend(r, "/elsewhere") == "fallback"
    run(test)


def test_a_redirect_action():
    async def test():
        rules = [{"priority": 5, "paths": ["/old/*"],
                  "redirect": {"status_code": "HTTP_301", "path": "/new/#{path}", "query": "#{query}&from=old"}},
                 {"priority": 6, "hosts": ["www.example.com"],
                  "redirect": {"status_code": "HTTP_302", "protocol": "HTTPS", "port": 443, "host": "example.com"}}]
        async with two_groups(rules=rules) as r:
            status, headers, _ = await r.get("/old/a/b?x=1", allow_redirects=False,
                                             headers={"Host": "internal-alb.local:9"})
            assert status == 301
            assert headers["Location"] == f"http://internal-alb.local:{r.lb.port}/new/old/a/b?x=1&from=old"
            status, headers, _ = await r.get("/p?q", allow_redirects=False, headers={"Host": "www.example.com"})
            assert (status, headers["Location"]) == (302, "https://example.com:443/p?q")
            assert r.backends["fallback"].requests == []
    run(test)
