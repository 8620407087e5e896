"""The Lambda runtime: devenv serves the Runtime API and runs each function instance as a
process of the official client, ``python -m awslambdaric module.handler``.

Each instance gets its own Runtime API listener (AWS_LAMBDA_RUNTIME_API is a bare
host:port, so the port is what tells instances apart). A function has a warm pool bounded
by its concurrency; a request beyond it is throttled. The runtime enforces the timeout (the
instance is killed), the memory size (RSS sampled while busy; killed above it), reports
init errors as AWS does, and writes CloudWatch-style START / END / REPORT lines to the
function's log. An instance's output reaches that log through a pipe the runtime reads, so
each invocation also keeps its own lines, START to REPORT, for ``LogType=Tail`` (instances
run side by side and share the log file). Async (Event) invocations are retried twice,
then sent to the on-failure destination or the DLQ.

The rules are ``pool.py``'s, a pure state machine; this module is its edge: it feeds it
events (Runtime API calls, exits, timers, RSS samples) and carries out the effects it returns.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from pathlib import Path

from devenv.aws.awslogs import Destination, Feed, LogShipper
from devenv.aws.metrics import MetricPublisher
from devenv.observe.spans import NullSink, Outcome, SpanSink, SpanTimer
from devenv.observe.trace_context import TraceContext
from devenv.runtime.threads import in_thread
from devenv.runtime.watch import watch
from devenv.runtime.peers import PeerScreen
from devenv.runtime.process import die_with_parent
from devenv.compute.lambda_.functions import (ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT, FunctionSpec, Interpreter,
                        choose_interpreter, instance_environment)
from devenv.compute.lambda_.invoke import FunctionNotFound, InvokeResult, PayloadTooLarge, Throttled
from devenv.compute.lambda_ import pool as pool_state
from devenv.compute.lambda_.pool import (INIT_TIMEOUT, LOG_TAIL, RESPONSE_LIMIT, Collect, Deliver, Effect, Finish,
                                         InstanceState, Kill, Log, Pool, Report, Start)
from devenv.compute.lambda_.runtime_api import serve_instance

log = logging.getLogger("devenv.lambda")
WATCH_READY_TIMEOUT = 2.0  # seconds start() waits for inotify to watch the code folders

MEMORY_SAMPLE_INTERVAL = 0.05
OUTPUT_CHUNK = 64 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(eq=False)
class Invocation(pool_state.Invocation):
    future: asyncio.Future | None = None  # the caller's answer
    timer: asyncio.TimerHandle | None = None  # its timeout, once handed over
    # Done once the caller has stopped waiting (it has its answer, or it went away). The
    # instance's 202 for /response waits for it, so that the caller's answer is written first:
    # each loopback write wakes its reader inside the writer's system call (~0.1 ms here),
    # and the caller should not wait behind the instance's acknowledgement.
    taken: asyncio.Future | None = None


def new_log_stream() -> str:
    """A log stream name as Lambda gives each execution environment: date/[version]id."""
    return time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{uuid.uuid4().hex}"


@dataclass(eq=False)  # identity semantics: instances live in sets and deques
class Instance(pool_state.Instance):
    process: asyncio.subprocess.Process | None = None
    server: asyncio.base_events.Server | None = None
    port: int = 0
    waiter: asyncio.Future | None = None  # /next parked here while idle
    output: int | None = None  # the read end of its stdout/stderr pipe (processes)
    reading: bool = False  # the loop reads ``output`` as it comes (off for an invocation's first tick)
    prints: bool = False  # it has printed during an invocation (so its pipe is worth pausing)
    log_stream: str = field(default_factory=new_log_stream)  # its CloudWatch Logs stream, as Lambda names it
    cloudwatch: Feed | None = None  # its lines' way into its CloudWatch stream, made once
    partial: bytes = b""  # the start of a line not yet ended, kept out of the shared log file

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


def cloudwatch_feed(awslogs: LogShipper, instance: Instance) -> Feed:
    found = instance.cloudwatch
    if found is None:
        spec = instance.function
        found = instance.cloudwatch = awslogs.feed(Destination(f"/aws/lambda/{spec.name}", instance.log_stream,
                                                               spec.region))
    return found


class FunctionPool:
    """One function's instances: the pure ``pool.Pool`` decides, this carries its effects out
    (futures, timers, processes through the runtime, log writes, /proc reads)."""

    def __init__(self, spec: FunctionSpec, runtime: "LambdaRuntime"):
        self.runtime = runtime
        self.state = Pool(spec, instance_type=Instance)
        self.interpreter: Interpreter = choose_interpreter(spec)

    @property
    def spec(self) -> FunctionSpec:
        """The function as it is now (PutFunctionConcurrency changes its reserved concurrency)."""
        return self.state.spec

    def reserve(self, concurrency: int | None) -> None:
        """Sets or (None) removes the reserved concurrency, from the next invocation on."""
        self.state.reserve(concurrency)

    @property
    def instances(self) -> dict[str, Instance]:
        return self.state.instances

    @property
    def active(self) -> int:
        return self.state.active

    @property
    def cold_starts(self) -> int:
        return self.state.cold_starts

    async def invoke(self, payload: bytes, trace_id: str | None, client_context: str | None,
                     request_id: str | None = None, *, invocation_type: str = "RequestResponse",
                     attempt: int = 1, answered: asyncio.Future | None = None) -> InvokeResult:
        """One invocation, recorded as a ``lambda`` span: its parent is the caller's trace
        context, and the instance gets the span's own context as Lambda-Runtime-Trace-Id.
        ``answered``: see ``Invoker.invoke``; by default the answer counts as taken when this
        returns (the Invoke API writes it in the same step)."""
        if len(payload) > SYNC_PAYLOAD_LIMIT:
            raise PayloadTooLarge(len(payload), SYNC_PAYLOAD_LIMIT)
        request_id = request_id or str(uuid.uuid4())
        span = SpanTimer(self.runtime.sink, TraceContext.parse(trace_id), "lambda", f"invoke {self.spec.name}",
                         {"function": self.spec.name, "request_id": request_id, "type": invocation_type})
        if attempt > 1:
            span.attributes["attempt"] = attempt
        loop = asyncio.get_running_loop()
        inv = Invocation(request_id, payload, span.context.header(), client_context, future=loop.create_future(),
                         taken=answered if answered is not None else loop.create_future())
        try:
            result = await self._run(inv)
        except Throttled as error:
            span.finish(Outcome.ERROR, error=error.error_type)
            self.runtime.metric(self.spec.name, "Throttles", 1, "Count")
            raise
        except BaseException as error:
            span.finish(Outcome.ERROR, error=type(error).__name__)
            raise
        finally:
            if answered is None:  # in the step that resumed the caller: its answer goes out first
                inv.taken.set_result(None)
        self.runtime.metric(self.spec.name, "Invocations", 1, "Count")
        self.runtime.metric(self.spec.name, "Errors", 0 if result.ok else 1, "Count")
        error_type = (result.error() or {}).get("errorType") if not result.ok else None
        span.finish(Outcome.OK if result.ok else Outcome.ERROR, cold=inv.cold,
                    **({"error": error_type} if error_type else {}))
        return result

    async def _run(self, inv: Invocation) -> InvokeResult:
        effects = self.state.invoke(inv)
        if effects and type(effects[0]) is Start:
            instance = effects[0].instance
            try:
                await self.runtime.spawn(self, instance)
            except OSError as exc:
                self.apply(self.state.start_failed(instance, str(exc)))
        else:
            self.apply(effects)
        return await asyncio.shield(inv.future)

    def apply(self, effects: list[Effect]) -> None:
        """Carries out the pool's decisions, in order."""
        runtime = self.runtime
        for effect in effects:
            kind = type(effect)
            if kind is Log:
                runtime.write_log(self.spec, effect.line, effect.instance)
                if effect.invocation is not None:
                    effect.invocation.keep_log((effect.line + "\n").encode())
            elif kind is Deliver:
                self._deliver(effect.instance, effect.invocation)
            elif kind is Collect:
                runtime.read_output(effect.instance, effect.into)
                runtime.log_output(effect.instance, b"", end=True)  # before END, ended or not
                runtime.follow_output(effect.instance)
            elif kind is Report:
                inv = effect.invocation
                for line in effect.lines(effect.max_memory_mb or runtime.peak_memory.mb(effect.instance.pid)):
                    runtime.write_log(self.spec, line, effect.instance)
                    inv.keep_log((line + "\n").encode())
                runtime.metric(self.spec.name, "Duration", effect.duration_ms, "Milliseconds")
            elif kind is Finish:
                inv = effect.invocation
                if inv.timer is not None:
                    inv.timer.cancel()
                if not inv.future.done():
                    inv.future.set_result(InvokeResult(inv.request_id, effect.payload, effect.function_error,
                                                       log_tail=log_tail(bytes(inv.log))))
            elif kind is Kill:
                runtime.kill(effect.instance)
            else:
                raise TypeError(f"{effect!r} is not carried out here")

    def _deliver(self, instance: Instance, inv: Invocation) -> None:
        waiter, instance.waiter = instance.waiter, None
        inv.timer = asyncio.get_running_loop().call_later(self.spec.timeout, self._timed_out, instance, inv)
        self.runtime.pause_output(instance)
        self.runtime.watch_memory(instance)
        if waiter is not None and not waiter.done():
            waiter.set_result(inv)

    def _timed_out(self, instance: Instance, inv: Invocation) -> None:
        self.apply(self.state.timed_out(instance, inv))

    # -- Runtime API events (called by the server for this pool's instances)

    def on_next(self, instance: Instance) -> asyncio.Future:
        """The instance asks for its next event: hand over the pending one or park it."""
        instance.waiter = asyncio.get_running_loop().create_future()
        waiter = instance.waiter
        self.apply(self.state.next(instance))
        return waiter

    def on_response(self, instance: Instance, request_id: str, body: bytes) -> int:
        status, effects = self.state.response(instance, request_id, body)
        self.apply(effects)
        return status

    def on_error(self, instance: Instance, request_id: str, body: bytes, error_type: str | None) -> int:
        status, effects = self.state.error(instance, request_id, body, error_type)
        self.apply(effects)
        return status

    def on_init_error(self, instance: Instance, body: bytes, error_type: str | None) -> int:
        status, effects = self.state.init_error(instance, body, error_type)
        self.apply(effects)
        return status

    def on_exit(self, instance: Instance, returncode: int) -> None:
        """The instance's process ended: fail its invocation unless already answered."""
        effects = self.state.exited(instance, returncode)
        if instance.waiter is not None and not instance.waiter.done():
            instance.waiter.cancel()
        self.apply(effects)

    def out_of_memory(self, instance: Instance) -> None:
        self.apply(self.state.out_of_memory(instance))

    def init_timed_out(self, instance: Instance) -> None:
        self.apply(self.state.init_timed_out(instance))

    def kill(self, instance: Instance) -> None:
        self.apply(self.state.kill(instance, None))

    async def reload(self) -> None:
        """Code changed: new invocations get new instances; busy ones finish first.

        Bytecode caches in the code folder are dropped first, on a thread of their own (a
        walk of a vendored SDK takes tens of milliseconds, which the loop serving invokes
        must not wait): Python validates them by the source's mtime in whole seconds and its
        size, so a quick same-size edit would otherwise load the old code."""
        await in_thread(_drop_bytecode, self.spec.code_dir)
        self.apply(self.state.reload())

    def reap_idle(self) -> None:
        self.apply(self.state.reap_idle(self.state.clock()))


def _drop_bytecode(code_dir: Path) -> None:
    for cached in code_dir.rglob("__pycache__/*.pyc"):
        cached.unlink(missing_ok=True)


class PeakMemory:
    """The peak resident memory (VmHWM) of instance processes, for their REPORT lines: read
    from /proc/PID/status through a descriptor kept open per process. Opening the file for
    each REPORT cost ~24 µs of the lambda process's CPU per invoke, a kept descriptor's
    pread ~10 µs; it also stays bound to that process, never to a later one given its pid."""

    def __init__(self) -> None:
        self._fds: dict[int, int] = {}

    def mb(self, pid: int | None) -> int:
        if pid is None:
            return 0
        try:
            fd = self._fds.get(pid)
            if fd is None:
                fd = self._fds[pid] = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
            data = os.pread(fd, 8192, 0)
        except OSError:  # gone (ESRCH), or no /proc
            self.forget(pid)
            return 0
        at = data.find(b"\nVmHWM:")
        try:
            kb = int(data[at + 7:data.index(b"\n", at + 1)].split()[0]) if at >= 0 else 0
        except (ValueError, IndexError):
            return 0
        return max(1, math.ceil(kb / 1024)) if kb else 0

    def forget(self, pid: int | None) -> None:
        fd = self._fds.pop(pid, None) if pid is not None else None
        if fd is not None:
            os.close(fd)


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * PAGE / (1024 * 1024)
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return 0.0


# ---------------------------------------------------------------- async invocations


@dataclass
class AsyncSettings:
    """Retry delays for Event invocations. AWS waits about 1 then 2 minutes; local stacks
    scale that down (devenv.local.yaml-style time scaling) so failures surface quickly."""

    retry_delays: tuple[float, ...] = (1.0, 2.0)
    throttle_retry: float = 0.2


@dataclass(frozen=True)
class AsyncFailure:
    """An Event invocation that exhausted its retries: what goes to the destination/DLQ."""

    function: FunctionSpec
    request_id: str
    payload: bytes
    result: InvokeResult | None
    attempts: int
    condition: str  # "RetriesExhausted"
    trace_id: str | None = None  # the invocation's trace, passed on as the message's AWSTraceHeader


class LambdaRuntime:
    """Every function's pool, the Runtime API servers of their instances, and the Invoker
    implementation that API Gateway, event sources and the Invoke API call."""

    def __init__(self, functions: Mapping[str, FunctionSpec], *, aws_env: Mapping[str, str],
                 on_async_failure: Callable[[AsyncFailure], "asyncio.Future | None"] | None = None,
                 async_settings: AsyncSettings | None = None, housekeeping_interval: float = 0.5,
                 sink: SpanSink | None = None, launcher: "InstanceLauncher | None" = None,
                 awslogs: LogShipper | None = None, metrics: MetricPublisher | None = None):
        self.launcher: InstanceLauncher = launcher or ProcessInstances()
        self.pools = {name: FunctionPool(spec, self) for name, spec in functions.items()}
        self._aws_env = dict(aws_env)
        self._on_async_failure = on_async_failure
        self._async = async_settings or AsyncSettings()
        self._housekeeping_interval = housekeeping_interval
        self._tasks: set[asyncio.Task] = set()
        self._busy_watch: set[Instance] = set()
        self.peak_memory = PeakMemory()
        self._memory_task: asyncio.Task | None = None
        self._log_handles: dict[str, int] = {}
        self._stopping = False
        self.sink: SpanSink = sink or NullSink()
        self.awslogs = awslogs  # every line also to /aws/lambda/<function>, as Lambda sends it
        self.metrics = metrics  # AWS/Lambda metrics, as Lambda publishes them
        self._series: dict[tuple[str, str], Callable[[float], None]] = {}  # (function, metric) -> its series

    # -- lifecycle

    async def start(self) -> None:
        await self.launcher.start()
        self._spawn_task(self._housekeeping())
        watching = asyncio.Event()
        self._spawn_task(self._watch_code(watching.set))
        try:  # an edit made right after start is then seen
            await asyncio.wait_for(watching.wait(), WATCH_READY_TIMEOUT)
        except asyncio.TimeoutError:
            log.warning("the functions' code folders are not watched yet; hot reload may miss a first edit")

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        for pool in self.pools.values():
            for instance in list(pool.instances.values()):
                pool.kill(instance)
                if instance.waiter is not None and not instance.waiter.done():
                    instance.waiter.cancel()  # releases the instance's parked /next
        for pool in self.pools.values():
            for instance in list(pool.instances.values()):
                if instance.process is not None:
                    try:
                        await asyncio.wait_for(instance.process.wait(), 2)
                    except asyncio.TimeoutError:
                        pass
        for pool in self.pools.values():
            for instance in list(pool.instances.values()):
                self._close_output(instance)
                self._end_shipping(instance)
                if instance.server is not None:
                    instance.server.close()
        for fd in self._log_handles.values():
            os.close(fd)
        self._log_handles.clear()

    def _spawn_task(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- Invoker

    def pool(self, function: str) -> FunctionPool:
        name = function.rsplit(":function:", 1)[-1].split(":")[0] if ":function:" in function else function
        pool = self.pools.get(name)
        if pool is None:
            raise FunctionNotFound(f"arn:aws:lambda:{_region_of(self)}:123456789012:function:{name}")
        return pool

    async def invoke(self, function: str, payload: bytes, *, trace_id: str | None = None,
                     client_context: str | None = None, answered: asyncio.Future | None = None) -> InvokeResult:
        return await self.pool(function).invoke(payload, trace_id, client_context, answered=answered)

    async def invoke_async(self, function: str, payload: bytes, *, trace_id: str | None = None) -> str:
        pool = self.pool(function)
        if len(payload) > ASYNC_PAYLOAD_LIMIT:
            raise PayloadTooLarge(len(payload), ASYNC_PAYLOAD_LIMIT, "Event")
        request_id = str(uuid.uuid4())
        trace = trace_id if TraceContext.parse(trace_id) else TraceContext.new().header()  # one trace for every retry
        self._spawn_task(self._run_async(pool, request_id, payload, trace))
        return request_id

    async def _run_async(self, pool: FunctionPool, request_id: str, payload: bytes, trace_id: str) -> None:
        """Event semantics: throttles wait and retry; errors retry up to the function's
        maximum_retry_attempts (default 2), then the on-failure destination or DLQ."""
        attempts = 0
        result: InvokeResult | None = None
        retries = pool.spec.maximum_retry_attempts
        while True:
            try:
                result = await pool.invoke(payload, trace_id, None, request_id,  # retries keep the id
                                           invocation_type="Event", attempt=attempts + 1)
            except Throttled:
                await asyncio.sleep(self._async.throttle_retry)  # AWS retries throttles for hours
                continue
            attempts += 1
            if result.ok:
                return
            if attempts > retries:
                break
            delay = self._async.retry_delays[min(attempts - 1, len(self._async.retry_delays) - 1)]
            await asyncio.sleep(delay)
        failure = AsyncFailure(pool.spec, request_id, payload, result, attempts, "RetriesExhausted", trace_id)
        self.write_log(pool.spec, f"devenv: async invocation {request_id} failed {attempts} times; "
                                  f"sending it to {pool.spec.on_failure_queue or pool.spec.dead_letter_queue or 'nowhere (no destination or DLQ configured)'}")
        if self._on_async_failure is not None:
            outcome = self._on_async_failure(failure)
            if asyncio.isfuture(outcome) or asyncio.iscoroutine(outcome):
                await outcome

    # -- instances

    @property
    def listen_host(self) -> str:
        """Where instances' Runtime API listeners bind (loopback, or where containers reach it)."""
        return self.launcher.listen_host

    @property
    def listen_screen(self) -> PeerScreen | None:
        """Who may connect there, when it is not loopback."""
        return self.launcher.listen_screen

    async def spawn(self, pool: FunctionPool, instance: Instance) -> None:
        server = await serve_instance(_InstanceApi(pool, instance), self.listen_host,
                                      max_body=RESPONSE_LIMIT + 1024 * 1024, screen=self.listen_screen)
        instance.server = server
        instance.port = server.sockets[0].getsockname()[1]
        pool.state.launching(instance)
        try:
            await self.launcher.launch(self, pool, instance)
        except OSError:
            self._forget(instance)
            raise
        self._spawn_task(self._watch_exit(pool, instance))
        self._spawn_task(self._init_deadline(pool, instance))

    async def _init_deadline(self, pool: FunctionPool, instance: Instance) -> None:
        await asyncio.sleep(INIT_TIMEOUT)
        pool.init_timed_out(instance)

    async def _watch_exit(self, pool: FunctionPool, instance: Instance) -> None:
        code = await instance.process.wait()
        self._busy_watch.discard(instance)
        if self.launcher.out_of_memory(instance):
            pool.out_of_memory(instance)
        pool.on_exit(instance, code)
        self._forget(instance)

    def _forget(self, instance: Instance) -> None:
        self.collect_output(instance)
        self._close_output(instance)
        self._end_shipping(instance)
        self.peak_memory.forget(instance.pid)
        if instance.server is not None:
            instance.server.close()
            instance.server = None

    def kill(self, instance: Instance) -> None:
        """Kills the instance's process, if it still runs (its pool decides when)."""
        if instance.process is not None and instance.process.returncode is None:
            self.launcher.kill(instance)

    def watch_memory(self, instance: Instance) -> None:
        self._busy_watch.add(instance)
        if self._memory_task is None or self._memory_task.done():
            self._memory_task = self._spawn_task(self._sample_memory())

    async def _sample_memory(self) -> None:
        """While any instance is busy, samples its RSS; above the function's memory size it
        is killed as Lambda kills a sandbox that runs out of memory. An invocation still
        running at a sample has its output followed again as it comes (``pause_output``)."""
        while self._busy_watch:
            await asyncio.sleep(MEMORY_SAMPLE_INTERVAL)
            for instance in list(self._busy_watch):
                if instance.state is not InstanceState.BUSY or instance.pid is None:
                    self._busy_watch.discard(instance)
                    continue
                pool = self.pools[instance.function.name]
                if instance.current is not None and \
                        pool.state.clock() - instance.current.delivered_at >= MEMORY_SAMPLE_INTERVAL:
                    self.follow_output(instance)
                if _rss_mb(instance.pid) > instance.function.memory_mb:
                    self._busy_watch.discard(instance)
                    pool.out_of_memory(instance)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self._housekeeping_interval)
            for pool in self.pools.values():
                pool.reap_idle()
            if self.metrics is not None:
                for name, pool in self.pools.items():
                    self.metric(name, "ConcurrentExecutions", pool.active, "Count")
                self.metrics.record("AWS/Lambda", "ConcurrentExecutions",
                                    sum(p.active for p in self.pools.values()), {}, "Count")

    def metric(self, function: str, name: str, value: float, unit: str) -> None:
        """One sample of an AWS/Lambda metric of ``function`` (nothing without a publisher);
        each metric named once (``series``: 1.7 µs a sample against 4 µs, three per invoke)."""
        if self.metrics is None:
            return
        series = self._series.get((function, name))
        if series is None:
            series = self._series[(function, name)] = self.metrics.series("AWS/Lambda", name,
                                                                          {"FunctionName": function}, unit)
        series(value)

    async def _watch_code(self, ready: Callable[[], None]) -> None:
        """Hot reload: an edit in a function's code folder (seen through inotify, nothing
        polled) retires its instances, so the next invocation loads the new code."""

        async def changed(folders: set[Path]) -> None:
            for pool in self.pools.values():
                if pool.spec.code_dir in folders:
                    await pool.reload()  # said once done: an invoke after the line gets the new code
                    self.write_log(pool.spec, "devenv: code changed; new instances will load it")

        try:
            await watch({pool.spec.code_dir for pool in self.pools.values()}, changed, on_ready=ready)
        except asyncio.CancelledError:
            raise
        except Exception:  # hot reload is a convenience: the runtime goes on without it
            log.exception("watching the functions' code failed; edits now need a restart")

    # -- logs

    def _log_fd(self, spec: FunctionSpec) -> int:
        fd = self._log_handles.get(spec.name)
        if fd is None:
            spec.log_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(spec.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._log_handles[spec.name] = fd
        return fd

    def write_log(self, spec: FunctionSpec, line: str, instance: Instance | None = None) -> None:
        """A platform line (START, END, REPORT, …) into the function's log, and its
        instance's CloudWatch stream when it has one."""
        os.write(self._log_fd(spec), (line + "\n").encode())
        if self.awslogs is not None and instance is not None:
            cloudwatch_feed(self.awslogs, instance).line(line)

    def log_output(self, instance: Instance, data: bytes, *, end: bool = False) -> None:
        """``data`` of an instance into its function's log file in whole lines: the instances
        of a function share the file, and a print reaches the pipe as its text, then its
        newline, so a line read in two pieces must not have another instance's output written
        between them. ``end``: what is left goes in as it is (before END, and at close)."""
        pending = instance.partial + data if instance.partial else data
        cut = len(pending) if end else pending.rfind(b"\n") + 1
        if cut:
            os.write(self._log_fd(instance.function), pending[:cut] if cut < len(pending) else pending)
        instance.partial = pending[cut:]

    def _ship_output(self, instance: Instance, data: bytes) -> None:
        """What an instance printed into its CloudWatch stream, as it was read (the shipper's
        thread cuts it into lines)."""
        if self.awslogs is not None and data:
            cloudwatch_feed(self.awslogs, instance).output(data)

    def _end_shipping(self, instance: Instance) -> None:
        """The instance's output is over: its unended last line goes as it is, the feed is dropped."""
        if instance.cloudwatch is not None:
            instance.cloudwatch.close()

    def pause_output(self, instance: Instance) -> None:
        """An invocation starts: the loop stops reading the instance's pipe as it comes, and
        what the handler prints is read at once before END (``Collect``), or from the next
        memory sample on (``follow_output``) if it runs longer. Reading each line as it came
        woke the compute process once more per printed line, and after ~10 ms of idleness
        that wake-up cost the invoke ~0.7 ms (warm invoke, logs handler: 2.5 ms against 1.8
        before the pipe); the pipe keeps what is written meanwhile (64 KiB, then the writer
        waits for the next sample). An instance that never printed during an invocation is
        left alone: the two epoll_ctl calls of a pause cost more than the nothing it prints."""
        if instance.prints and instance.reading and instance.output is not None:
            asyncio.get_running_loop().remove_reader(instance.output)
        instance.reading = False

    def follow_output(self, instance: Instance) -> None:
        """The loop reads the instance's pipe as output comes (idle instances, long invocations)."""
        if not instance.reading and instance.output is not None:
            asyncio.get_running_loop().add_reader(instance.output, self.collect_output, instance)
            instance.reading = True

    def collect_output(self, instance: Instance) -> None:
        """Reads what the instance has written so far, without blocking (the loop calls it
        when there is output): into its function's log and the invocation it runs."""
        self.read_output(instance, instance.output_invocation())

    def read_output(self, instance: Instance, into: Invocation | None) -> None:
        """Reads what the instance has written so far into its function's log and ``into``'s
        own: the pool asks for it before END, so that an invocation's lines are all in
        before its REPORT."""
        while instance.output is not None:
            try:
                data = os.read(instance.output, OUTPUT_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # the instance (and whatever it started) has closed it
                self._close_output(instance)
                self.log_output(instance, b"", end=True)
                self._end_shipping(instance)
                return
            self.log_output(instance, data)
            self._ship_output(instance, data)
            if into is not None:
                into.keep_log(data)
                instance.prints = instance.prints or instance.state is InstanceState.BUSY

    def instance_output(self, instance: Instance, data: bytes, written_at: float | None = None) -> None:
        """Output of an instance: into its function's log, and into the invocation it is running
        (the one that started it, during init). ``written_at``: when an engine logged it
        (containers), so that late output of an earlier invocation is not counted in."""
        self.log_output(instance, data)
        self._ship_output(instance, data)
        inv = instance.output_invocation()
        if inv is not None and (written_at is None or written_at >= inv.started_wall):
            inv.keep_log(data)

    def _close_output(self, instance: Instance) -> None:
        if instance.output is not None:
            if instance.reading:
                asyncio.get_running_loop().remove_reader(instance.output)
            os.close(instance.output)
            instance.output = None
            instance.reading = False



class _InstanceApi:
    """The Runtime API calls of one instance (its own listener), as the pool's operations."""

    __slots__ = ("pool", "instance")

    def __init__(self, pool: FunctionPool, instance: Instance):
        self.pool = pool
        self.instance = instance

    async def next(self) -> "_NextEvent":
        inv: Invocation = await self.pool.on_next(self.instance)
        return _NextEvent(inv, self.pool.spec.arn)

    def response(self, request_id: str, body: bytes) -> int | Awaitable[int]:
        inv = self.instance.current
        return _after_caller(inv, self.pool.on_response(self.instance, request_id, body))

    def error(self, request_id: str, body: bytes, error_type: str | None) -> int | Awaitable[int]:
        inv = self.instance.current
        return _after_caller(inv, self.pool.on_error(self.instance, request_id, body, error_type))

    def init_error(self, body: bytes, error_type: str | None) -> int:
        return self.pool.on_init_error(self.instance, body, error_type)


def _after_caller(inv: pool_state.Invocation | None, status: int) -> int | Awaitable[int]:
    """``status`` at once, or once the invocation's caller has taken its answer."""
    taken = getattr(inv, "taken", None)
    if status != 202 or taken is None or taken.done():
        return status
    return _once(taken, status)


async def _once(taken: asyncio.Future, status: int) -> int:
    await taken
    return status


class _NextEvent:
    """An invocation as ``/next`` hands it over: the event and AWS's Lambda-Runtime-* headers."""

    __slots__ = ("payload", "_inv", "_arn")

    def __init__(self, inv: Invocation, arn: str):
        self.payload = inv.payload
        self._inv = inv
        self._arn = arn

    def headers(self) -> list[tuple[str, str]]:
        inv = self._inv
        headers = [("Lambda-Runtime-Aws-Request-Id", inv.request_id),
                   ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
                   ("Lambda-Runtime-Invoked-Function-Arn", self._arn),
                   ("Lambda-Runtime-Trace-Id", inv.trace_id)]
        if inv.client_context:
            headers.append(("Lambda-Runtime-Client-Context", inv.client_context))
        return headers


def _region_of(runtime: LambdaRuntime) -> str:
    for pool in runtime.pools.values():
        return pool.spec.region
    return "us-east-1"


def log_tail(payload: bytes) -> str:
    """Base64 of up to the last 4 KB, as X-Amz-Log-Result carries."""
    return base64.b64encode(payload[-LOG_TAIL:]).decode()


class InstanceLauncher(Protocol):
    """Where instances run, injected into the runtime: processes (``ProcessInstances``, native)
    or containers (``containers.ContainerInstances``, docker). The runtime owns Lambda's
    semantics; a launcher only starts and kills the awslambdaric client."""

    listen_host: str  # where the instances' Runtime API listeners bind
    listen_screen: PeerScreen | None  # who may connect there, when it is not loopback

    async def start(self) -> None:
        """Before the first instance: forget what a crashed compute process left behind."""

    async def launch(self, runtime: LambdaRuntime, pool: FunctionPool, instance: Instance) -> None:
        """Starts the instance's ``python -m awslambdaric``; sets ``instance.process`` (anything
        with ``pid``, ``returncode`` and ``wait()``); its output goes to ``runtime.instance_output``
        or ``runtime.collect_output``. Raises OSError when it cannot start."""

    def kill(self, instance: Instance) -> None:
        """Kills a running instance at once."""

    def out_of_memory(self, instance: Instance) -> bool:
        """Whether something other than devenv's RSS sampling killed it for its memory."""


class ProcessInstances:
    """The native InstanceLauncher: each instance a process in its function's environment."""

    listen_host = "127.0.0.1"
    listen_screen: PeerScreen | None = None

    async def start(self) -> None:
        return None

    async def launch(self, runtime: LambdaRuntime, pool: FunctionPool, instance: Instance) -> None:
        spec = pool.spec
        env = instance_environment(spec, runtime_api=f"127.0.0.1:{instance.port}", aws_env=runtime._aws_env,
                                   interpreter=pool.interpreter, log_stream=instance.log_stream)
        if pool.interpreter.warning and pool.cold_starts <= 1:
            runtime.write_log(spec, pool.interpreter.warning)
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        try:
            instance.process = await asyncio.create_subprocess_exec(
                pool.interpreter.executable, "-m", "awslambdaric", spec.handler,
                cwd=str(spec.code_dir), env=env, stdin=asyncio.subprocess.DEVNULL, stdout=write_end,
                stderr=write_end, start_new_session=True, preexec_fn=die_with_parent(signal.SIGKILL))
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        instance.output = read_end
        runtime.follow_output(instance)

    def kill(self, instance: Instance) -> None:
        try:
            os.killpg(instance.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                instance.process.kill()
            except ProcessLookupError:
                pass

    def out_of_memory(self, instance: Instance) -> bool:
        return False  # devenv's own sampling kills a process over its memory
