"""Invoke with LogType=Tail through the Invoke API, against real awslambdaric instances that
run side by side and share their function's log file."""

from __future__ import annotations

import asyncio
import base64
import json

import boto3
import pytest

from devenv.compute.lambda_ import invoke_api
from tests.integration.lambda_.test_runtime import run, spec, until

pytestmark = pytest.mark.integration


def test_a_tail_holds_only_its_own_invocation_s_lines(tmp_path):
    # The tail used to be cut from the shared log file from this request's START to its end:
    # the other invocations' lines came with it.
    chatty = spec("chatty", "handlers.chatty", tmp_path, timeout=10.0)

    async def body(runtime):
        server = await invoke_api.serve(runtime, "127.0.0.1", 0)
        client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}",
                              region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")

        def invoke():
            return client.invoke(FunctionName="chatty", Payload=b'{"lines": 6}', LogType="Tail")

        try:
            side_by_side = await asyncio.gather(*(asyncio.to_thread(invoke) for _ in range(3)))
            return [*side_by_side, await asyncio.to_thread(invoke)]  # the last one on a warm instance
        finally:
            server.close()

    answers = run([chatty], body)
    for answer in answers:
        own = json.loads(answer["Payload"].read())["request_id"]
        lines = base64.b64decode(answer["LogResult"]).decode().splitlines()
        assert lines[0] == f"START RequestId: {own} Version: $LATEST", lines
        assert lines[1:-2] == [f"{own} line {n}" for n in range(6)], lines
        assert lines[-2] == f"END RequestId: {own}" and lines[-1].startswith(f"REPORT RequestId: {own}\t")
    log = (tmp_path / "chatty.log").read_text()
    assert log.count(" line 5\n") == 4 and log.count("REPORT RequestId: ") == 4  # the log has them all


def test_a_tail_keeps_the_last_4_kb_and_a_crash_s_last_words(tmp_path):
    chatty = spec("chatty", "handlers.chatty", tmp_path, timeout=10.0)
    boom = spec("boom", "handlers.boom", tmp_path)

    async def body(runtime):
        return (await runtime.invoke("chatty", b'{"lines": 300, "pause": 0}'),
                await runtime.invoke("boom", b'{}'))

    long, failed = run([chatty, boom], body)
    tail = base64.b64decode(long.log_tail)
    assert len(tail) == 4096 and b"START" not in tail
    assert tail.decode().splitlines()[-1].startswith(f"REPORT RequestId: {long.request_id}\t")
    failed_lines = base64.b64decode(failed.log_tail).decode()
    assert "about to fail" in failed_lines and "ValueError" in failed_lines


def test_a_long_invocation_s_lines_reach_the_log_while_it_runs(tmp_path):
    # The pipe is not read during an invocation's first memory sample (a line read as it
    # came woke the compute process once more per invoke); past it, lines come as printed.
    chatty = spec("chatty", "handlers.chatty", tmp_path, timeout=10.0)
    log = tmp_path / "chatty.log"

    async def body(runtime):
        await runtime.invoke("chatty", b'{"lines": 1, "pause": 0}')  # warm: no init in the way
        running = asyncio.ensure_future(runtime.invoke("chatty", b'{"lines": 3, "pause": 0.6}'))
        seen = await until(lambda: log.exists() and log.read_text().count(" line 1\n") == 1, timeout=5.0)
        still_running = not running.done()
        return seen, still_running, await running

    seen, still_running, result = run([chatty], body)
    assert seen and still_running and result.ok
