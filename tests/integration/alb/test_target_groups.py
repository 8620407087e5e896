"""Target-group settings through the real ALB: duration-based stickiness (the AWSALB cookie,
kept by a real client's cookie jar) and the least-outstanding-requests algorithm."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import AsyncIterator

import aiohttp

from tests.integration.alb.test_load_balancer import Rig, rig, run, service, until


def test_stickiness_holds_a_client_to_one_task_until_it_leaves():
    async def test():
        async with rig({"api": service(stickiness={"duration": 3600})}) as r:
            for name, host in (("a", "127.0.0.41"), ("b", "127.0.0.42"), ("c", "127.0.0.43")):
                await r.backend("api", name, host)
            jar = aiohttp.CookieJar(unsafe=True)  # the ALB's address is an IP
            async with aiohttp.ClientSession(cookie_jar=jar) as client:
                async def get() -> tuple[str, str]:
                    async with client.get(r.lb.url + "/x") as response:
                        body = await response.json()
                        cookies = response.headers.getall("Set-Cookie")
                        assert cookies[0].startswith("backend=")  # the task's own comes through
                        assert any(c.startswith("AWSALB=") and "Path=/" in c for c in cookies)
                        assert any(c.startswith("AWSALBCORS=") and "SameSite=None" in c for c in cookies)
                        return body["backend"], response.cookies["AWSALB"].value
                first, cookie = await get()
                assert [(await get())[0] for _ in range(6)] == [first] * 6
                others = {(await r.get_json("/x"))["backend"] for _ in range(3)}  # cookie-less clients rotate
                assert others == {"a", "b", "c"}

                await asyncio.wait_for(r.lb.group("api").deregister(first), 5)  # the task leaves
                moved, new_cookie = await get()
                assert moved != first and new_cookie != cookie
                assert [(await get())[0] for _ in range(4)] == [moved] * 4
    run(test)


def test_least_outstanding_requests_avoids_a_busy_task():
    async def test():
        async with rig({"api": service(algorithm="least_outstanding_requests")}) as r:
            a = await r.backend("api", "a", "127.0.0.41")
            b = await r.backend("api", "b", "127.0.0.42")
            async with r.client.get(r.lb.url + "/stream") as held:  # stays in flight until released
                assert await held.content.readline() == b"first chunk\n"
                busy = "a" if a.requests == ["/stream"] else "b"
                seen = [(await r.get_json("/x"))["backend"] for _ in range(4)]
                assert busy not in seen  # round robin would have sent two of the four there
                a.release.set()
                b.release.set()
                assert await held.content.read() == b"last chunk\n"
            assert await until(lambda: r.lb.group("api").in_flight(busy) == 0)
    run(test)


def test_slow_start_ramps_up_a_task_added_by_a_scale_out():
    async def test():
        async with rig({"api": service(slow_start=30)}) as r:
            await r.backend("api", "a", "127.0.0.44")  # the first task: a full share at once

            async def share_of_new(n: int) -> float:
                seen = [(await r.get_json("/x"))["backend"] for _ in range(n)]
                return seen.count("b") / n
            assert await share_of_new(10) == 0.0
            await r.backend("api", "b", "127.0.0.45")  # the scale-out: healthy, now in slow start
            started = time.monotonic()
            early = await share_of_new(40)
            early_at = time.monotonic() - started
            assert early <= early_at / 30 + 0.05  # weight elapsed/30 beside a's 1: few requests at first
            shares = [early]
            deadline = started + 25
            while shares[-1] < 0.3 and time.monotonic() < deadline:
                shares.append(await share_of_new(40))
            assert shares[-1] >= 0.3, shares  # its share grows (a full one, half, when the 30 s end)
            assert shares[-1] > early
    run(test)


@contextlib.asynccontextmanager
async def sticky_groups(first_host: int) -> AsyncIterator[Rig]:
    """Target groups blue and green (each with AWSALB stickiness, two tasks: blue-a, blue-b,
    green-a, green-b on 127.0.0.<first_host>..+3) and a rule forwarding /shop/* to both, 1:1,
    with target group stickiness."""
    services = {"blue": service(priority=10, paths=["/blue/*"], stickiness={"duration": 3600}),
                "green": service(priority=11, paths=["/green/*"], stickiness={"duration": 3600})}
    rules = [{"priority": 1, "paths": ["/shop/*"], "forward": {"blue": 1, "green": 1},
              "target_group_stickiness": {"duration": 600}}]
    async with rig(services, rules=rules) as r:
        for n, name in enumerate(("blue-a", "blue-b", "green-a", "green-b")):
            await r.backend(name.split("-")[0], name, f"127.0.0.{first_host + n}")
        yield r


def test_target_group_stickiness_holds_a_client_to_one_group_and_awsalb_to_one_task_in_it():
    async def test():
        async with sticky_groups(51) as r:
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as client:
                async def get() -> str:
                    async with client.get(r.lb.url + "/shop/cart") as response:
                        cookies = response.headers.getall("Set-Cookie")
                        assert any(c.startswith("AWSALBTG=") and "Path=/" in c for c in cookies)
                        assert any(c.startswith("AWSALBTGCORS=") and "SameSite=None; Secure" in c for c in cookies)
                        assert any(c.startswith("AWSALB=") for c in cookies)  # the group's own stickiness
                        return (await response.json())["backend"]
                first = await get()
                assert [await get() for _ in range(20)] == [first] * 20  # one group, one task in it
            seen = [(await r.get_json("/shop/cart"))["backend"] for _ in range(20)]  # no cookies: by weight
            groups = [name.split("-")[0] for name in seen]
            assert groups.count("blue") == groups.count("green") == 10
            assert set(seen) == {"blue-a", "blue-b", "green-a", "green-b"}
    run(test)
