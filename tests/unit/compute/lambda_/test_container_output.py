"""runtime: docker: a Lambda instance container's output reaches its function's log, and an
invocation's tail takes only what the engine logged after its START."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from devenv.compute.lambda_.containers import _pump, engine_time
from devenv.compute.lambda_.runtime import Instance, InstanceState, Invocation, LambdaRuntime


class FakeContainer:
    def __init__(self, chunks):
        self.chunks = chunks

    def logs(self, stream: bool, follow: bool, timestamps: bool):
        assert stream and follow and timestamps
        yield from self.chunks


def test_engine_times_are_epoch_seconds():
    assert engine_time(b"1970-01-01T00:01:40.250000000Z") == 100.25
    assert engine_time(b"2024-05-01T10:00:00Z") == 1714557600
    assert engine_time(b"garbage") == 0.0


def test_output_an_earlier_invocation_wrote_is_logged_but_not_in_the_next_tail(tmp_path: Path):
    spec = SimpleNamespace(name="fn", log_file=tmp_path / "fn.log")
    instance = Instance("i1", spec, 0, state=InstanceState.BUSY)
    instance.current = Invocation("req-2", b"{}", "", None, started_wall=100.0)
    chunks = [b"1970-01-01T00:01:39.900000000Z late line of req-1\n",  # written before req-2's START
              b"1970-01-01T00:01:40.100000000Z req-2 line\n"]

    async def scenario(runtime: LambdaRuntime) -> None:
        loop = asyncio.get_running_loop()
        # The pump's callbacks are queued on this loop before the executor's result: they have run.
        await loop.run_in_executor(None, _pump, FakeContainer(chunks), runtime, instance, loop)
        await runtime.stop()

    runtime = LambdaRuntime({}, aws_env={})
    asyncio.run(scenario(runtime))
    assert bytes(instance.current.log) == b"req-2 line\n"
    assert (tmp_path / "fn.log").read_bytes() == b"late line of req-1\nreq-2 line\n"


def test_instances_sharing_a_log_file_write_whole_lines(tmp_path: Path):
    # A print reaches the pipe as its text, then its newline; another instance's output read
    # in between used to land inside the line in the shared file.
    spec = SimpleNamespace(name="fn", log_file=tmp_path / "fn.log")
    one, two = (Instance(name, spec, 0, state=InstanceState.BUSY) for name in ("i1", "i2"))
    runtime = LambdaRuntime({}, aws_env={})
    runtime.log_output(one, b"one line 5")
    runtime.log_output(two, b"two line 5\ntwo line 6")
    runtime.log_output(one, b"\n")
    runtime.log_output(two, b"", end=True)  # its invocation ends (Collect, before END): unended text too
    assert (tmp_path / "fn.log").read_bytes() == b"two line 5\none line 5\ntwo line 6"
