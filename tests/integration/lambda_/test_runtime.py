"""The Lambda runtime against real awslambdaric processes: cold and warm starts, the
standard environment, concurrency and throttling, timeouts, memory, init errors, error
shapes, async retries to a destination, and hot reload."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from devenv.compute.lambda_.functions import FunctionSpec
from devenv.compute.lambda_.invoke import FunctionNotFound, PayloadTooLarge, Throttled
from devenv.observe.trace_context import TraceContext
from devenv.compute.lambda_.runtime import AsyncSettings, LambdaRuntime
from tests.support import ListSink

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "functions"


def spec(name: str, handler: str, log_dir: Path, code: Path = FIXTURES / "basic", **overrides) -> FunctionSpec:
    values = dict(name=name, handler=handler, code_dir=code, runtime="python3.11", memory_mb=128, timeout=3.0,
                  environment={"GREETING": "hello"}, reserved_concurrency=None, maximum_retry_attempts=2,
                  on_failure_queue=None, dead_letter_queue=None, region="us-east-1",
                  log_file=log_dir / f"{name}.log")
    values.update(overrides)
    return FunctionSpec(**values)


async def until(condition, timeout: float = 10.0) -> bool:
    """Waits on a condition with a deadline (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


def run(specs, body, **runtime_options):
    """Runs ``body(runtime)`` against a started runtime, then stops it."""
    async def main():
        runtime = LambdaRuntime({s.name: s for s in specs}, aws_env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
                                **runtime_options)
        await runtime.start()
        try:
            return await body(runtime)
        finally:
            await runtime.stop()
    return asyncio.run(main())


ROOT = "1-5e0a1b2c-0123456789abcdef01234567"


def payload(result) -> dict:
    return json.loads(result.payload)


def test_cold_then_warm_start_with_the_standard_environment(tmp_path):
    echo = spec("echo", "handlers.echo", tmp_path, timeout=5.0, memory_mb=256)

    async def body(rt):
        first = await rt.invoke("echo", b'{"n": 1}', trace_id=f"Root={ROOT};Parent=00000000000000aa;Sampled=1")
        second = await rt.invoke("echo", b'{"n": 2}')
        return first, second

    first, second = run([echo], body)
    a, b = payload(first), payload(second)
    assert first.ok and a["event"] == {"n": 1} and a["cold"] is True
    assert b["cold"] is False and b["pid"] == a["pid"]  # same warm instance
    assert a["function"] == "echo" and a["memory"] == "256"
    # Lambda-Runtime-Trace-Id reached _X_AMZN_TRACE_ID: the caller's trace, the invoke span as parent
    trace = TraceContext.parse(a["trace"])
    assert trace.root == ROOT and trace.parent not in (None, "00000000000000aa")
    assert TraceContext.parse(b["trace"]).root != ROOT  # no context given: a trace of its own
    assert a["env"] == {"AWS_LAMBDA_FUNCTION_NAME": "echo", "AWS_REGION": "us-east-1", "GREETING": "hello",
                        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    assert 4500 < a["remaining_ms"] <= 5000
    log = echo.log_file.read_text()
    reports = [l for l in log.splitlines() if l.startswith("REPORT")]
    assert len(reports) == 2
    assert re.match(r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB\t"
                    r"Max Memory Used: \d+ MB\tInit Duration: [\d.]+ ms$", reports[0])
    assert "Init Duration" not in reports[1]
    assert f"START RequestId: {first.request_id} Version: $LATEST" in log
    assert f"END RequestId: {second.request_id}" in log


def test_remaining_time_tracks_the_deadline(tmp_path):
    sleepy = spec("sleepy", "handlers.sleepy", tmp_path, timeout=2.0)
    result = run([sleepy], lambda rt: rt.invoke("sleepy", b'{"seconds": 0.5}'))
    assert 1100 <= payload(result)["remaining_ms"] <= 1500  # the deadline minus the 0.5 s slept, minus delivery


def test_concurrency_limit_then_throttling(tmp_path):
    sleepy = spec("sleepy", "handlers.sleepy", tmp_path, reserved_concurrency=2)

    async def body(rt):
        running = [asyncio.ensure_future(rt.invoke("sleepy", b'{"seconds": 1}')) for _ in range(2)]
        assert await until(lambda: rt.pools["sleepy"].active == 2)
        with pytest.raises(Throttled) as throttled:
            await rt.invoke("sleepy", b'{"seconds": 0}')
        results = await asyncio.gather(*running)
        after = await rt.invoke("sleepy", b'{"seconds": 0}')  # capacity is back
        return throttled.value, results, after

    throttled, results, after = run([sleepy], body)
    assert throttled.status == 429 and throttled.error_type == "TooManyRequestsException"
    assert throttled.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert all(r.ok for r in results) and len({payload(r)["pid"] for r in results}) == 2
    assert after.ok


def test_timeout_kills_the_instance_and_answers_like_aws(tmp_path):
    sleepy = spec("sleepy", "handlers.sleepy", tmp_path, timeout=0.5)

    async def body(rt):
        timed_out = await rt.invoke("sleepy", b'{"seconds": 5}')
        gone = await until(lambda: not rt.pools["sleepy"].instances)
        again = await rt.invoke("sleepy", b'{"seconds": 0}')
        return timed_out, gone, again

    timed_out, gone, again = run([sleepy], body)
    error = payload(timed_out)
    assert timed_out.function_error == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"] == f"RequestId: {timed_out.request_id} Error: Task timed out after 0.50 seconds"
    assert gone, "the timed-out instance was not killed"
    assert again.ok
    assert f"{timed_out.request_id} Task timed out after 0.50 seconds" in sleepy.log_file.read_text()


def test_memory_limit_kills_the_instance(tmp_path):
    hog = spec("hog", "handlers.hog", tmp_path, memory_mb=128)
    result = run([hog], lambda rt: rt.invoke("hog", b'{"mb": 400}'))
    error = payload(result)
    assert result.function_error == "Unhandled"
    assert error["errorType"] == "Runtime.OutOfMemory"
    assert "Runtime exited with error: signal: killed" in error["errorMessage"]
    assert "Max Memory Used: 128 MB" in hog.log_file.read_text()


def test_init_error_handler_error_bad_return_and_crash_have_aws_shapes(tmp_path):
    specs = [spec("broken", "handlers.handler", tmp_path, code=FIXTURES / "broken"),
             spec("boom", "handlers.boom", tmp_path),
             spec("unser", "handlers.unserialisable", tmp_path),
             spec("exits", "handlers.exits", tmp_path),
             spec("aborts", "handlers.aborts", tmp_path),
             spec("missing", "handlers.no_such_handler", tmp_path),
             spec("echo", "handlers.quiet", tmp_path)]

    async def body(rt):
        out = {}
        for name in ("broken", "boom", "unser", "exits", "aborts", "missing"):
            out[name] = await rt.invoke(name, b'{"k": "v"}')
        out["echo"] = await rt.invoke("echo", b'{"still": "serving"}')
        return out

    out = run(specs, body)
    assert payload(out["broken"])["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'module_that_does_not_exist'" in payload(out["broken"])["errorMessage"]
    boom = payload(out["boom"])
    assert boom["errorType"] == "ValueError" and boom["errorMessage"] == 'boom: {"k": "v"}'
    assert boom["requestId"] == out["boom"].request_id and "raise ValueError" in "".join(boom["stackTrace"])
    assert payload(out["unser"])["errorType"] == "Runtime.MarshalError"
    assert payload(out["exits"])["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in payload(out["exits"])["errorMessage"]
    assert payload(out["aborts"])["errorType"] == "Runtime.ExitError"
    assert payload(out["aborts"])["errorMessage"].endswith("Runtime exited with error: signal: aborted")
    assert payload(out["missing"])["errorType"] == "Runtime.HandlerNotFound"
    assert all(out[n].function_error == "Unhandled" for n in ("broken", "boom", "unser", "exits", "aborts", "missing"))
    assert out["echo"].ok and payload(out["echo"]) == {"still": "serving"}
    assert "INIT_REPORT Init Duration" in (tmp_path / "broken.log").read_text()
    assert "Status: error\tError Type: Runtime.ImportModuleError" in (tmp_path / "broken.log").read_text()
    assert "[ERROR] ValueError: boom" in (tmp_path / "boom.log").read_text()


def test_service_errors(tmp_path):
    echo = spec("echo", "handlers.quiet", tmp_path)

    async def body(rt):
        with pytest.raises(FunctionNotFound) as missing:
            await rt.invoke("nope", b"{}")
        with pytest.raises(PayloadTooLarge) as large:
            await rt.invoke("echo", b"x" * (6 * 1024 * 1024 + 1))
        with pytest.raises(PayloadTooLarge):
            await rt.invoke_async("echo", b"x" * (256 * 1024 + 1))
        return missing.value, large.value

    missing, large = run([echo], body)
    assert missing.status == 404 and "function:nope" in missing.message
    assert large.status == 413 and large.error_type == "RequestEntityTooLargeException"


def test_async_invocation_retries_twice_then_reaches_the_destination(tmp_path):
    boom = spec("boom", "handlers.boom", tmp_path, on_failure_queue="failures")
    failures = []

    async def body(rt):
        request_id = await rt.invoke_async("boom", b'{"async": true}')
        assert await until(lambda: failures, timeout=15)
        return request_id

    request_id = run([boom], body, on_async_failure=failures.append,
                     async_settings=AsyncSettings(retry_delays=(0.05, 0.05)))
    failure = failures[0]
    assert failure.request_id == request_id and failure.attempts == 3
    assert failure.condition == "RetriesExhausted"
    assert failure.result.error()["errorType"] == "ValueError"
    # Every attempt ran under the same request id, as AWS retries do.
    assert boom.log_file.read_text().count(f"START RequestId: {request_id}") == 3


def test_async_success_is_not_retried(tmp_path):
    echo = spec("echo", "handlers.quiet", tmp_path)
    failures = []

    async def body(rt):
        request_id = await rt.invoke_async("echo", b'{"ok": 1}')
        assert await until(lambda: echo.log_file.exists() and f"END RequestId: {request_id}" in echo.log_file.read_text())
        await rt.invoke("echo", b"{}")  # a later invocation: the async one had its chance to retry
        return request_id

    request_id = run([echo], body, on_async_failure=failures.append,
                     async_settings=AsyncSettings(retry_delays=(0.01, 0.01)))
    assert echo.log_file.read_text().count(f"START RequestId: {request_id}") == 1
    assert failures == []


def reloadable(tmp_path, name: str):
    """A function whose code folder the test edits: (its spec, its handler file at version 1)."""
    code = tmp_path / "code"
    shutil.copytree(FIXTURES / "basic", code)
    handler = code / "reloadable.py"
    handler.write_text("def handler(event, context):\n    return {'version': 1}\n")
    return spec(name, "reloadable.handler", tmp_path, code=code), handler


def test_hot_reload_takes_effect_on_the_next_invocation(tmp_path):
    fn, handler = reloadable(tmp_path, "reload")

    async def body(rt):
        before = payload(await rt.invoke("reload", b"{}"))
        handler.write_text("def handler(event, context):\n    return {'version': 2}\n")

        versions = []

        async def check():
            versions.append(payload(await rt.invoke("reload", b"{}"))["version"])
            return versions[-1] == 2

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not await check():
            await asyncio.sleep(0.05)
        return before, versions

    before, versions = run([fn], body)
    assert before == {"version": 1}
    assert versions[-1] == 2
    assert "code changed" in fn.log_file.read_text()


def test_once_the_code_changed_line_is_written_the_next_invocation_runs_the_new_code(tmp_path):
    # The line used to be written before the reload (which first drops bytecode on a thread):
    # an invoke right after it could still reach the old warm instance.
    fn, handler = reloadable(tmp_path, "said")

    async def body(rt):
        versions = []
        for version in (2, 3, 4):
            await rt.invoke("said", b"{}")  # a warm instance of the old code is idle
            said = fn.log_file.read_text().count("code changed")
            handler.write_text(f"def handler(event, context):\n    return {{'version': {version}}}\n")
            deadline = time.monotonic() + 10
            while fn.log_file.read_text().count("code changed") == said and time.monotonic() < deadline:
                await asyncio.sleep(0.001)  # the loop runs the watcher meanwhile
            versions.append(payload(await rt.invoke("said", b"{}"))["version"])
        return versions

    assert run([fn], body) == [2, 3, 4]



def test_each_invocation_is_a_lambda_span_and_its_id_is_the_instance_s_parent(tmp_path):
    echo = spec("echo", "handlers.echo", tmp_path, timeout=5.0)
    boom = spec("boom", "handlers.boom", tmp_path)
    sink = ListSink()

    async def body(rt):
        first = await rt.invoke("echo", b"{}", trace_id=f"Root={ROOT};Parent=00000000000000aa;Sampled=1")
        second = await rt.invoke("echo", b"{}", trace_id=f"Root={ROOT};Parent=00000000000000bb;Sampled=1")
        failed = await rt.invoke("boom", b"{}", trace_id=f"Root={ROOT};Parent=00000000000000cc;Sampled=1")
        return first, second, failed

    first, second, failed = run([echo, boom], body, sink=sink)
    cold, warm, error = sink.spans
    assert [s.trace_id for s in sink.spans] == [ROOT] * 3
    assert (cold.parent_id, warm.parent_id, error.parent_id) == ("00000000000000aa", "00000000000000bb",
                                                                 "00000000000000cc")
    assert cold.attributes["cold"] is True and warm.attributes["cold"] is False
    assert cold.attributes["request_id"] == first.request_id and cold.attributes["function"] == "echo"
    assert TraceContext.parse(payload(first)["trace"]).parent == cold.span_id
    assert not cold.failed and error.failed and error.attributes["error"] == payload(failed)["errorType"]
