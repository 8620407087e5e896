"""The ``xray`` component: devenv's X-Ray daemon, where ``AWS_XRAY_DAEMON_ADDRESS`` points
every task and function (``python -m devenv.observe.xray_daemon DEVENV_YAML``).

On one port of 127.0.0.1, as the AWS daemon: UDP for segment documents (see ``xray.py``),
TCP for the SDKs' sampling calls and a ``/health`` probe. With ``runtime: docker`` on a
Linux engine it listens on the stack network's gateway too (containers send to
``host.docker.internal``), for the stack's containers only (runtime/peers.py). Each completed segment becomes
devenv spans (``xray-<pid>.jsonl``, so `devenv trace` nests an instrumented service's
subsegments in the hop that called it) and is forwarded, batched, to the emulator's X-Ray
API (PutTraceSegments), where GetTraceSummaries and BatchGetTraces read it. An emulator
without X-Ray is said once and no longer called.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from devenv.aws.endpoint import AwsEndpoint
from devenv.aws.lean_api import LeanApi
from devenv.aws.sender import BackgroundSender, error_code
from devenv.compute.entry import run, until_stopped
from devenv.config.loader import Overrides, load_project
from devenv.runtime.guard import aiohttp_middleware
from devenv.runtime.peers import PeerScreen, ScreenedDatagrams, screened
from devenv.runtime.ports import HOST, load_remembered
from devenv.runtime.statedir import StateDir

from .spans import Span, SpanSink, sink_from_environment
from .xray import BadDatagram, document_text, parse_datagram, sampling_rules, sampling_targets, segment_spans

log = logging.getLogger("devenv.xray")

PUT_BATCH = 50  # segment documents per PutTraceSegments call
# Seconds between forwards, as the awslogs shipper sends: each PutTraceSegments costs moto
# ~2 ms of CPU whatever its size (0.5 s doubled that while traffic flows), and devenv's own
# spans of the segments are written at once anyway.
SEND_INTERVAL = 1.0
# Seconds between turning the datagrams received into spans and documents (see SegmentReceiver).
DRAIN_INTERVAL = 0.5
MAX_KEPT = 10_000  # documents kept while the emulator is unreachable
# What a sender's bad document raises deep in the parsing, the span walk or the spans' encoding.
BROKEN = (RecursionError, TypeError, ValueError, AttributeError)
UNSUPPORTED = {"UnknownOperationException", "InvalidAction", "NotImplemented", "InternalFailure", "404"}


class SegmentForwarder(BackgroundSender):
    """Segment documents to the emulator's PutTraceSegments, from its own thread, through the
    lean client (``aws/lean_api.py``: a third of botocore's CPU per call, in the process that
    receives every segment)."""

    what = "the emulator's X-Ray API"

    def __init__(self, endpoint: AwsEndpoint, interval: float = SEND_INTERVAL):
        super().__init__(interval, "xray-forward")
        self._endpoint = endpoint
        self._client: Any = None
        self._lock = threading.Lock()
        self._documents: list[str] = []
        self.unsupported = False
        self.sent = 0

    def add(self, document: str) -> None:
        """A segment document, as JSON text."""
        if self.unsupported:
            return
        with self._lock:
            self._documents.append(document)
            del self._documents[:-MAX_KEPT]

    def _cycle(self, final: bool) -> bool:
        with self._lock:
            pending, self._documents = self._documents, []
        try:
            if self._client is None:
                self._client = LeanApi(self._endpoint.url, self._endpoint.region, "xray", "the emulator's X-Ray API")
            while pending:
                self._client.call("PutTraceSegments", {"TraceSegmentDocuments": pending[:PUT_BATCH]},
                                  path="/TraceSegments", content_type="application/json")
                self.sent += len(pending[:PUT_BATCH])
                del pending[:PUT_BATCH]
        except Exception as exc:
            code = error_code(exc)
            if code in UNSUPPORTED:
                self.unsupported = True
                log.warning("the emulator has no X-Ray API (%s): segments stay in devenv's traces only", code)
                return True
            with self._lock:
                self._documents[:0] = pending
            self._note_outage(exc)
            return False
        self._recovered()
        return True


class SegmentReceiver(asyncio.DatagramProtocol):
    """UDP datagrams from the SDKs: spans for devenv, documents for the emulator.

    A datagram is only kept as it arrives; ``drain`` (every ``DRAIN_INTERVAL``) turns what
    came into spans and documents. A segment arrives as the request it describes ends, while
    the flow that request started goes on (validation-service's answer, then its event): its
    parsing and spans, done at once, competed for the CPU with that flow (the real daemon
    buffers segments too, and sends them in batches)."""

    def __init__(self, sink: SpanSink, forwarder: SegmentForwarder):
        self.sink = sink
        self.forwarder = forwarder
        self.received = 0
        self.refused = 0
        self._pending: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._pending.append(data)
        del self._pending[:-MAX_KEPT]

    def drain(self) -> None:
        """What came since the last drain: its spans recorded in one go (the sink's one write),
        each completed document forwarded as the SDK wrote it."""
        pending, self._pending = self._pending, []
        taken: list[list[Span]] = []
        for data in pending:
            try:
                taken.append(self._take(data))
            except BROKEN as exc:
                # JSON nested past the recursion limit, or a field of an unexpected type deep in
                # the document: one sender's bad datagram, never the end of the daemon's draining.
                self._refuse(f"{exc.__class__.__name__}: {exc}")
        try:
            self.sink.record_all([span for spans in taken for span in spans])
        except BROKEN:  # a span that does not encode (an annotation nested too deep): each on its own
            for spans in taken:
                try:
                    self.sink.record_all(spans)
                except BROKEN as exc:
                    self._refuse(f"{exc.__class__.__name__}: {exc}")

    def _refuse(self, why: str) -> None:
        self.refused += 1
        if self.refused in (1, 10, 100, 1000):  # say so, without a line per bad datagram
            log.warning("ignored %d datagram(s) that are not X-Ray segments (last: %s)", self.refused, why)

    async def drain_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.drain()

    def _take(self, data: bytes) -> list[Span]:
        """The spans of one datagram (whole before anything is kept: a bad one gives nothing);
        its document, once complete, to the forwarder."""
        try:
            document = parse_datagram(data)
        except BadDatagram as exc:
            self._refuse(str(exc))
            return []
        spans = segment_spans(document)
        self.received += 1
        if not document.get("in_progress"):
            self.forwarder.add(document_text(data, document))
        return spans


def sampling_app(receiver: SegmentReceiver) -> web.Application:
    """The daemon's TCP side: the SDKs' centralized sampling, and a health probe."""
    app = web.Application(middlewares=[aiohttp_middleware()])

    async def rules(request: web.Request) -> web.Response:
        return web.json_response(sampling_rules(time.time()))

    async def targets(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        return web.json_response(sampling_targets(body if isinstance(body, dict) else {}, time.time()))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"received": receiver.received, "forwarded": receiver.forwarder.sent})

    app.router.add_post("/GetSamplingRules", rules)
    app.router.add_post("/SamplingTargets", targets)
    app.router.add_get("/health", health)
    return app


async def serve(config_file: Path, overrides: Overrides) -> None:
    project = load_project(config_file, overrides=overrides)
    state = StateDir(project.state_dir)
    ports = load_remembered(state.ports_file)
    port = ports["xray"]
    forwarder = SegmentForwarder(AwsEndpoint(f"http://{HOST}:{ports['emulator']}", project.config.region)).start()
    receiver = SegmentReceiver(sink_from_environment("xray"), forwarder)
    loop = asyncio.get_running_loop()
    transports = [(await loop.create_datagram_endpoint(lambda: receiver, local_addr=(HOST, port)))[0]]
    runner = web.AppRunner(sampling_app(receiver), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, HOST, port, reuse_address=True).start()
    servers = []
    gateway, screen = _containers_way_in(project)
    if gateway is not None and screen is not None:
        transports.append((await loop.create_datagram_endpoint(lambda: ScreenedDatagrams(receiver, screen),
                                                               local_addr=(gateway, port)))[0])
        servers.append(await loop.create_server(screened(runner.server, screen), gateway, port, reuse_address=True))
    where = " and ".join([HOST, *([gateway] if servers else [])])
    print(f"xray daemon ready: udp and tcp {where}:{port}", flush=True)
    draining = asyncio.create_task(receiver.drain_every(DRAIN_INTERVAL))
    await until_stopped()
    draining.cancel()
    for transport in transports:
        transport.close()
    for server in servers:
        server.close()
    await runner.cleanup()
    receiver.drain()  # what came since the last drain, forwarded by close
    await loop.run_in_executor(None, forwarder.close)


def _containers_way_in(project: Any) -> tuple[str | None, PeerScreen | None]:
    """Where the stack's containers reach this daemon beside 127.0.0.1 (``runtime: docker`` on a
    Linux engine: the stack network's gateway), and who may (its subnets); (None, None) otherwise."""
    if project.config.runtime != "docker":
        return None, None
    from devenv.runtime.docker import DockerEngine, stack_key

    engine = DockerEngine(stack_key(project.config.name, project.root, project.instance))
    _, gateway = engine.host_gateway()
    if gateway is None:  # Docker Desktop forwards host-gateway to the host's loopback
        return None, None
    return gateway, PeerScreen.of(engine.stack_subnets())


def main(argv: list[str]) -> int:
    return run(serve, "devenv.observe.xray_daemon", argv)


if __name__ == "__main__":
    from devenv.runtime.exit import exit_now

    exit_now(main(sys.argv))
