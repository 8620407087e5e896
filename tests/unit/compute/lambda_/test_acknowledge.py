"""An instance's /response is acknowledged after the invocation's caller has its answer:
on loopback each write wakes its reader inside the writer's system call, so the order of the
two writes is the order of the two wake-ups, and the caller should not wait behind the
instance's 202."""

from __future__ import annotations

import asyncio

from devenv.compute.lambda_.runtime import LambdaRuntime, _InstanceApi
from tests.unit.compute.lambda_.test_pool import SPEC


async def _started(monkeypatch, runtime: LambdaRuntime):
    """The function's pool with one instance that has asked for its first event (no process)."""
    pool = runtime.pool("fn")
    started = asyncio.get_running_loop().create_future()

    async def spawn(pool_, instance):
        pool_.state.launching(instance)
        started.set_result(instance)

    monkeypatch.setattr(runtime, "spawn", spawn)
    return pool, started


def _runtime() -> LambdaRuntime:
    return LambdaRuntime({"fn": SPEC}, aws_env={})


async def _handed_over(monkeypatch) -> tuple[_InstanceApi, str, asyncio.Future]:
    """An invocation in flight: the instance's Runtime API, its request id, and the caller."""
    runtime = _runtime()
    pool, started = await _started(monkeypatch, runtime)
    calling = asyncio.ensure_future(runtime.invoke("fn", b"{}"))
    instance = await asyncio.wait_for(started, 5)
    api = _InstanceApi(pool, instance)
    event = await asyncio.wait_for(api.next(), 5)
    return api, event.headers()[0][1], calling


def test_the_acknowledgement_waits_until_the_caller_has_its_answer(monkeypatch):
    order: list[str] = []

    async def scenario():
        runtime = _runtime()
        pool, started = await _started(monkeypatch, runtime)

        async def caller():
            result = await runtime.invoke("fn", b"{}")
            order.append(f"caller has {result.payload.decode()}")
            return result

        calling = asyncio.ensure_future(caller())
        instance = await asyncio.wait_for(started, 5)
        api = _InstanceApi(pool, instance)
        event = await asyncio.wait_for(api.next(), 5)
        request_id = event.headers()[0][1]
        ack = api.response(request_id, b'{"ok": 1}')
        assert not isinstance(ack, int)  # held: the caller has not resumed yet
        order.append(f"instance acknowledged {await asyncio.wait_for(ack, 5)}")
        await asyncio.wait_for(calling, 5)

    asyncio.run(scenario())
    assert order == ['caller has {"ok": 1}', "instance acknowledged 202"]


def test_a_caller_that_answers_later_holds_the_acknowledgement_until_it_says(monkeypatch):
    seen: list[str] = []

    async def scenario():
        runtime = _runtime()
        pool, started = await _started(monkeypatch, runtime)
        answered = asyncio.get_running_loop().create_future()
        calling = asyncio.ensure_future(runtime.invoke("fn", b"{}", answered=answered))
        instance = await asyncio.wait_for(started, 5)
        api = _InstanceApi(pool, instance)
        event = await asyncio.wait_for(api.next(), 5)
        ack = asyncio.ensure_future(api.response(event.headers()[0][1], b"{}"))
        await asyncio.wait_for(calling, 5)  # the invocation is over for the pool ...
        for _ in range(20):  # ... and the loop turns, but the caller has not answered yet
            await asyncio.sleep(0)
        seen.append(f"held: {not ack.done()}")
        answered.set_result(None)
        seen.append(f"then {await asyncio.wait_for(ack, 5)}")

    asyncio.run(scenario())
    assert seen == ["held: True", "then 202"]


def test_an_answer_nobody_waits_for_is_acknowledged_at_once(monkeypatch):
    async def scenario():
        api, request_id, calling = await _handed_over(monkeypatch)
        calling.cancel()  # the client went away before the function answered
        await asyncio.gather(calling, return_exceptions=True)
        return api.response(request_id, b"{}")

    assert asyncio.run(scenario()) == 202


def test_a_refused_response_is_answered_at_once(monkeypatch):
    async def scenario():
        api, _, calling = await _handed_over(monkeypatch)
        status = api.response("not-this-request", b"{}")
        calling.cancel()
        await asyncio.gather(calling, return_exceptions=True)
        return status

    assert asyncio.run(scenario()) == 400
