#!/usr/bin/env python3
"""devenv's Lambda side (Invoke API, API Gateway, SQS event source mapping, cold start)
measured beside ministack, in one run, with the same handler code deployed to both.

    python benchmarks/lambda_vs_ministack.py [--invokes N] [--api-requests N] [--sqs-messages N]
        [--cold-starts N] [--concurrency C] [--seconds S] [--rounds R]
        [--out benchmarks/RESULTS.md] [--source head|worktree]

What runs:
- devenv from the HEAD commit, exported with `git archive` and put first on PYTHONPATH (as
  benchmarks/run.py does), so edits others make to devenv/ cannot reach the run; the
  project is a throwaway folder under /tmp (mkdtemp, chmod 0755) with its own devenv.yaml
  (no Postgres/Redis; functions, an `api:` section and an SQS event source mapping).
- ministack, pinned (MINISTACK_VERSION), installed by this script into its own virtualenv
  under ~/.cache/devenv-bench/ so its exact botocore pin never touches the Python devenv
  runs on; started as BENCHMARKS.md says, on 127.0.0.1 only.
- One handler module (benchmarks' HANDLER below) deployed to both: the folder devenv runs
  is the folder zipped for ministack. `silent` returns at once; `logs` prints one line
  first (ministack waits up to 50 ms for stderr output after each invoke, so both variants
  are measured); `sqs` records its own start time.

How it is measured: after a warm-up, the two stacks are called alternately, request by
request (the order flips every round), from this process with one keep-alive
http.client connection per stack and identical requests. Throughput uses C threads, each
with its own keep-alive connection, for S seconds per stack, back to back, R rounds. The
load generator is this Python process: its CPU use is measured and reported because on a
2-core box it competes with the servers. The script always ends with `devenv down
--volumes`, stops ministack (and its workers) and removes its folders, also on Ctrl-C,
SIGTERM or an error. Every loop is bounded; every target is 127.0.0.1.
See /work/shared/BENCHMARKS.md for how figures are reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import io
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as lifecycle  # noqa: E402  (benchmarks/run.py: the CLI wrapper, stack checks, cleanup)
from run import BenchError, p99, say  # noqa: E402
from results import write_samples  # noqa: E402

REPO = lifecycle.REPO
MINISTACK_VERSION = "1.5.33"
MINISTACK_VENV = Path.home() / ".cache" / "devenv-bench" / f"ministack-{MINISTACK_VERSION}"
SECTION_BEGIN = "<!-- lambda-vs-ministack:begin -->"
SECTION_END = "<!-- lambda-vs-ministack:end -->"

UP_TIMEOUT = 240.0
REQUEST_TIMEOUT = 30.0
STAGE = "bench"
QUEUE = "bench-lambda-q"
DIRECT_QUEUE = "bench-direct-q"  # no mapping: the limit, a direct receive
REGION = "us-east-1"
# A dummy SigV4 header: ministack routes Invoke by its credential scope; devenv ignores it.
# Both stacks get the same headers.
AUTH = ("AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/lambda/aws4_request, "
        "SignedHeaders=host, Signature=0")
EVENT = b'{"bench": true, "path": "/items/42"}'
EXPECTED_INVOKE = b'{"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}'

TARGETS_MS = {"warm": 2.0, "api": 5.0, "sqs": 100.0, "cold": 300.0}

HANDLER = '''\
"""The benchmark's handler, deployed unchanged to devenv and to ministack."""
import json
import time

RESPONSE = {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}


def silent(event, context):
    return RESPONSE


def logs(event, context):
    print("handled", context.aws_request_id)
    return RESPONSE


def sqs(event, context):
    started = time.time()
    lines = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        attributes = record.get("attributes", {})
        lines.append((body["out"], f"{body['i']} {body['t']!r} {started!r} "
                                   f"{attributes.get('SentTimestamp', '0')} "
                                   f"{attributes.get('ApproximateFirstReceiveTimestamp', '0')}\\n"))
    for out, line in lines:
        with open(out, "a") as handle:
            handle.write(line)
    return {}
'''

DEVENV_YAML = """\
# Written by benchmarks/lambda_vs_ministack.py for one run; the folder is removed afterwards.
name: lambdabench
region: us-east-1
runtime: native
emulator: moto
infra: {{postgres: false, redis: false}}
queues:
  {queue}:
    visibility_timeout: 30
  {direct_queue}:
    visibility_timeout: 30
functions:
  silent: {{handler: handler.silent, code: code}}
  logs: {{handler: handler.logs, code: code}}
  cold: {{handler: handler.silent, code: code-cold}}
{sqs_function}api:
  name: bench
  stage: {stage}
  routes:
    - {{method: GET, path: "/silent/{{proxy+}}", function: silent}}
    - {{method: GET, path: "/logs/{{proxy+}}", function: logs}}
"""
SQS_FUNCTION = """\
  sqs:
    handler: handler.sqs
    code: code
    events:
      - sqs: {{queue: {queue}, batch_size: 10}}
"""

# The reference server: the same client against aiohttp answering the same bytes, with no
# Lambda behind it (devenv's Invoke API and API Gateway are aiohttp servers too).
FLOOR_SERVER = """
import sys
from aiohttp import web
BODY = %r
async def answer(request):
    await request.read()
    return web.Response(body=BODY, content_type="application/json")
app = web.Application()
app.router.add_route("*", "/{tail:.*}", answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
""" % EXPECTED_INVOKE

INTERRUPTED_BY_SIGNAL = lifecycle.INTERRUPTED_BY_SIGNAL


# ---------------------------------------------------------------- small helpers


def pct(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), p99(values)


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def port_answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def process_times(pids: set[int]) -> dict[tuple[int, int], int]:
    """utime+stime in clock ticks of each live pid, keyed by (pid, start time)."""
    found: dict[tuple[int, int], int] = {}
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        found[(pid, int(fields[19]))] = int(fields[11]) + int(fields[12])
    return found


def machine_busy() -> tuple[int, int]:
    """(busy, softirq) clock ticks of the whole machine, all CPUs, from /proc/stat (busy is
    everything but idle and iowait). Softirq time (loopback networking among it) belongs to
    no process, so it is reported apart."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields[:8]) - fields[3] - fields[4], fields[6]


class CpuMeter:
    """CPU seconds used during a phase by this process (the load generator, all threads) and
    by the process trees of the servers (pids found under each root at start and end)."""

    def __init__(self, roots: dict[str, int]):
        self.roots = roots

    def _trees(self) -> dict[str, set[int]]:
        children = lifecycle.ppid_map()
        return {name: lifecycle.tree(pid, children) for name, pid in self.roots.items() if pid}

    def __enter__(self) -> "CpuMeter":
        self.usage0 = resource.getrusage(resource.RUSAGE_SELF)
        self.trees0 = {name: process_times(pids) for name, pids in self._trees().items()}
        self.machine0 = machine_busy()
        self.wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall0
        busy, softirq = machine_busy()
        self.machine = (busy - self.machine0[0]) / clock_ticks()
        self.softirq = (softirq - self.machine0[1]) / clock_ticks()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.loadgen = (usage.ru_utime - self.usage0.ru_utime) + (usage.ru_stime - self.usage0.ru_stime)
        self.servers: dict[str, float] = {}
        for name, pids in self._trees().items():
            now = process_times(pids | {p for p, _ in self.trees0.get(name, {})})
            before = self.trees0.get(name, {})
            self.servers[name] = sum(ticks - before.get(key, 0) for key, ticks in now.items()) / clock_ticks()

    def share(self, seconds: float) -> float:
        """As a fraction of one core over the phase."""
        return seconds / self.wall if self.wall else 0.0

    def breakdown(self) -> dict[str, float]:
        """Cores busy on average over the phase: the load generator, each server tree, and
        everything else on the machine (other people's work)."""
        parts = {"load generator": self.share(self.loadgen)}
        parts.update({name: self.share(sec) for name, sec in self.servers.items()})
        parts["kernel softirq"] = self.share(self.softirq)
        parts["everything else"] = max(0.0, self.share(self.machine) - sum(parts.values()))
        return parts


# ---------------------------------------------------------------- the two stacks


@dataclass
class Target:
    """One stack as the load generator sees it."""

    name: str
    invoke_port: int
    api_port: int
    api_host: str | None  # Host header for API Gateway (ministack), None = default
    api_prefix: str       # path before /{route}
    sqs_endpoint: str
    server_pid: int       # root of the process tree serving Lambda/API
    extra_pids: dict[str, int] = field(default_factory=dict)
    queue_url: str = ""
    sqs_out: Path | None = None
    sqs_client: object = None
    receive_client: object = None
    direct_url: str = ""
    sqs_sent: int = 0


class NoDelayConnection(http.client.HTTPConnection):
    """http.client with TCP_NODELAY, as urllib3 (and so boto3) sets it: http.client sends a
    POST's headers and body in two writes, which Nagle's algorithm would otherwise hold."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class KeepAlive:
    """One keep-alive HTTP/1.1 connection (http.client), reconnected if the server closes it."""

    def __init__(self, port: int):
        self.port = port
        self.conn = NoDelayConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]
                ) -> tuple[float, int, bytes, http.client.HTTPResponse]:
        for attempt in (1, 2):
            try:
                started = time.perf_counter()
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                return (time.perf_counter() - started) * 1000, response.status, data, response
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = NoDelayConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def invoke_request(function: str) -> tuple[str, str, bytes, dict[str, str]]:
    return ("POST", f"/2015-03-31/functions/{function}/invocations", EVENT,
            {"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse",
             "Authorization": AUTH})


def api_request(target: Target, variant: str) -> tuple[str, str, None, dict[str, str]]:
    headers = {"Accept": "*/*"}
    if target.api_host:
        headers["Host"] = target.api_host
    return "GET", f"{target.api_prefix}/{variant}/items/42?q=1", None, headers


class Ministack:
    """A ministack server this script started (and only that one)."""

    def __init__(self, port: int, tmp: Path):
        self.port = port
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None
        self.start_tick: int | None = None
        self.seen: set[tuple[int, int]] = set()  # (pid, start) of it and its workers
        self.log = tmp / "ministack.log"

    @staticmethod
    def ensure_installed() -> Path:
        exe = MINISTACK_VENV / "bin" / "ministack"
        python = MINISTACK_VENV / "bin" / "python"
        if exe.is_file() and _pip_version(python) == MINISTACK_VERSION:
            return exe
        say(f"installing ministack=={MINISTACK_VERSION} into {MINISTACK_VENV} (its own virtualenv)…")
        MINISTACK_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(MINISTACK_VENV)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"ministack=={MINISTACK_VERSION}"],
                       check=True, timeout=900)
        if _pip_version(python) != MINISTACK_VERSION:
            raise BenchError(f"ministack {MINISTACK_VERSION} did not install into {MINISTACK_VENV}")
        return exe

    def start(self, exe: Path) -> None:
        if port_answers(self.port):
            raise BenchError(f"127.0.0.1:{self.port} already answers; not measuring someone else's server "
                             "(pass --ministack-port)")
        env = dict(os.environ)
        env.update({"GATEWAY_PORT": str(self.port), "BIND_HOST": "127.0.0.1", "TMPDIR": str(self.tmp)})
        env.pop("PYTHONPATH", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(exe)], cwd=self.tmp, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.start_tick = lifecycle.proc_start(self.proc.pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"ministack exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/_ministack/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError("ministack did not answer /_ministack/health within 60 s")

    def note_tree(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for pid in lifecycle.tree(self.proc.pid, lifecycle.ppid_map()):
            start = lifecycle.proc_start(pid)
            if start is not None:
                self.seen.add((pid, start))

    def version(self) -> str:
        return _pip_version(MINISTACK_VENV / "bin" / "python") or "?"

    def stop(self) -> list[str]:
        problems: list[str] = []
        if self.proc is None:
            return problems
        self.note_tree()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                problems.append("ministack ignored SIGTERM for 15 s; killed")
                self.proc.kill()
                self.proc.wait(timeout=15)
        deadline = time.monotonic() + 5  # give it time to stop its workers itself
        while time.monotonic() < deadline and any(lifecycle.proc_start(p) == s for p, s in self.seen):
            time.sleep(0.1)
        for pid, start in sorted(self.seen):
            if lifecycle.proc_start(pid) == start:  # still the very process we saw
                try:
                    os.kill(pid, signal.SIGKILL)
                    problems.append(f"ministack process {pid} (a worker) still ran 5 s after ministack "
                                    "stopped; killed it")
                except ProcessLookupError:
                    pass
        return problems


def _pip_version(python: Path) -> str | None:
    if not python.exists():
        return None
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('ministack'))"],
                          capture_output=True, text=True, timeout=60)
    return done.stdout.strip() if done.returncode == 0 else None


def boto(service: str, endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30))


def code_zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*.py")):
            archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def wait_for(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:g} s waiting for {what}")


def deploy_ministack(endpoint: str, project: Path, with_sqs: bool) -> dict:
    """Functions (same zip as devenv's folders), the REST API and the SQS mapping, made
    with boto3 calls against ministack."""
    lam, apigw, sqs = boto("lambda", endpoint), boto("apigateway", endpoint), boto("sqs", endpoint)
    role = "arn:aws:iam::000000000000:role/bench-lambda"
    created = {}
    for name, handler, folder in (("silent", "handler.silent", "code"), ("logs", "handler.logs", "code"),
                                  ("cold", "handler.silent", "code-cold"), ("sqs", "handler.sqs", "code")):
        config = lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler=handler,
                                     Code={"ZipFile": code_zip(project / folder)}, Timeout=3, MemorySize=128)
        created[name] = config["FunctionArn"]
    for name in created:
        wait_for(lambda: lam.get_function_configuration(FunctionName=name).get("State") == "Active",
                 30, f"ministack function {name} to be Active")
    api = apigw.create_rest_api(name="bench")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    for name in ("silent", "logs"):
        parent = apigw.create_resource(restApiId=api, parentId=root, pathPart=name)["id"]
        proxy = apigw.create_resource(restApiId=api, parentId=parent, pathPart="{proxy+}")["id"]
        apigw.put_method(restApiId=api, resourceId=proxy, httpMethod="GET", authorizationType="NONE")
        apigw.put_integration(restApiId=api, resourceId=proxy, httpMethod="GET", type="AWS_PROXY",
                              integrationHttpMethod="POST",
                              uri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
                                  f"{created[name]}/invocations")
    apigw.create_deployment(restApiId=api, stageName=STAGE)
    queue_url = ""
    if with_sqs:
        queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="sqs", BatchSize=10, Enabled=True)
        sqs.create_queue(QueueName=DIRECT_QUEUE, Attributes={"VisibilityTimeout": "30"})
    return {"api_id": api, "queue_url": queue_url, "lambda": lam}


# ---------------------------------------------------------------- measurements


@dataclass
class Pair:
    """Samples of one measure for both stacks (ms unless said otherwise)."""

    devenv: list[float] = field(default_factory=list)
    ministack: list[float] = field(default_factory=list)

    def of(self, name: str) -> list[float]:
        return self.devenv if name == "devenv" else self.ministack


@dataclass
class Results:
    warm: dict[str, Pair] = field(default_factory=dict)        # variant -> invoke ms
    api: dict[str, Pair] = field(default_factory=dict)         # variant -> request ms
    rps: dict[str, Pair] = field(default_factory=dict)         # variant -> req/s per round
    rps_cpu: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # variant -> who -> core share
    sqs: Pair = field(default_factory=Pair)                    # send -> handler start, ms
    sqs_send: Pair = field(default_factory=Pair)               # send_message call itself, ms
    sqs_direct: Pair = field(default_factory=Pair)             # send -> direct ReceiveMessage returns, ms
    sqs_parts: dict[str, Pair] = field(default_factory=dict)   # part of send -> handler, ms (1 ms res.)
    cold: Pair = field(default_factory=Pair)                   # first invoke after a code change, ms
    cold_first: Pair = field(default_factory=Pair)             # first invoke after deploy, ms
    init_duration: list[float] = field(default_factory=list)   # devenv REPORT Init Duration, ms
    report_duration: dict[str, list[float]] = field(default_factory=dict)  # devenv REPORT Duration (warm)
    latency_cpu: dict[str, float] = field(default_factory=dict)  # phase -> loadgen CPU µs per request
    floor: dict[str, list[float]] = field(default_factory=dict)  # phase -> same client, bare aiohttp, ms
    back_to_back: dict[str, Pair] = field(default_factory=dict)  # variant -> invoke ms, blocks of N
    phase_cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> who -> cores busy
    errors: dict[str, int] = field(default_factory=dict)
    sqs_skipped: str = ""
    load: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def alternate(round_: int, targets: list[Target]) -> list[Target]:
    return targets if round_ % 2 == 0 else list(reversed(targets))


def check_invoke(status: int, body: bytes, results: Results, phase: str) -> bool:
    if status == 200 and body == EXPECTED_INVOKE:
        return True
    results.errors[phase] = results.errors.get(phase, 0) + 1
    if results.errors[phase] <= 3:
        say(f"{phase}: unexpected answer {status} {body[:200]!r}")
    return False


def latency_phase(kind: str, variant: str, targets: list[Target], runs: int, warmup: int,
                  results: Results, floor_port: int | None = None, block: int = 1,
                  label: str = "") -> tuple[Pair, list[str]]:
    """Sequential requests. block=1: the stacks alternate request by request (order flipped
    every round); block=N: N consecutive requests to one stack, then N to the other (back to
    back). With floor_port the same request also goes to the reference server in the same
    pattern. Returns the samples and devenv's request ids (to find their REPORT lines)."""
    conns = {t.name: KeepAlive(t.invoke_port if kind == "warm" else t.api_port) for t in targets}
    if floor_port is not None:
        conns["floor"] = KeepAlive(floor_port)
    pair = Pair()
    request_ids: list[str] = []
    phase = label or f"{kind}/{variant}"
    floor = results.floor.setdefault(phase, [])
    try:
        def one(target: Target | None) -> tuple[float, bool, str]:
            if target is None:  # the reference server
                ms, status, data, _ = conns["floor"].request(*invoke_request(variant))
                if status != 200 or data != EXPECTED_INVOKE:
                    raise BenchError(f"the reference server answered {status} {data[:100]!r}")
                return ms, True, ""
            method, path, body, headers = (invoke_request(variant) if kind == "warm"
                                           else api_request(target, variant))
            ms, status, data, response = conns[target.name].request(method, path, body, headers)
            if kind == "warm":
                ok = check_invoke(status, data, results, phase)
            else:
                ok = status == 200 and data == b"ok"
                if not ok:
                    results.errors[phase] = results.errors.get(phase, 0) + 1
                    if results.errors[phase] <= 3:
                        say(f"{phase}: unexpected answer {status} {data[:200]!r}")
            return ms, ok, response.getheader("x-amzn-RequestId") or ""

        def order(i: int) -> list[Target | None]:
            found: list[Target | None] = list(alternate(i, targets))
            if floor_port is not None:
                found.insert(i % 3, None)
            return found

        def rounds(count: int):
            """(target, measured?) in the phase's pattern, `count` requests per target."""
            step = max(1, block)
            for i in range(-(-count // step)):
                for target in order(i):
                    for _ in range(min(step, count - i * step)):
                        yield target

        for target in rounds(warmup):
            one(target)
        results.errors.pop(phase, None)  # warm-up answers do not count
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        sent = 0
        for target in rounds(runs):
            ms, ok, request_id = one(target)
            sent += 1
            if target is None:
                floor.append(ms)
            elif ok:
                pair.of(target.name).append(ms)
                if target.name == "devenv":
                    request_ids.append(request_id)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage.ru_utime - usage0.ru_utime) + (usage.ru_stime - usage0.ru_stime)
        results.latency_cpu[phase] = cpu / max(1, sent) * 1e6
    finally:
        for conn in conns.values():
            conn.close()
    if not floor:
        results.floor.pop(phase, None)
    if results.errors.get(phase, 0) > max(1, runs // 100):
        raise BenchError(f"{phase}: {results.errors[phase]} of {2 * runs} requests failed")
    return pair, request_ids


def throughput(target: Target, variant: str, concurrency: int, seconds: float) -> tuple[float, int]:
    """Closed loop: `concurrency` threads, each with its own keep-alive connection, for
    `seconds`. Returns (successful requests per second, failures)."""
    stop_at = time.perf_counter() + seconds
    counts = [0] * concurrency
    failures = [0] * concurrency

    def worker(index: int) -> None:
        conn = KeepAlive(target.api_port)
        method, path, body, headers = api_request(target, variant)
        try:
            for _ in range(10_000_000):  # bounded; the clock ends it long before
                if time.perf_counter() >= stop_at:
                    break
                try:
                    _, status, data, _ = conn.request(method, path, body, headers)
                except OSError:
                    failures[index] += 1
                    continue
                if status == 200 and data == b"ok":
                    counts[index] += 1
                else:
                    failures[index] += 1
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + REQUEST_TIMEOUT + 5)
    return sum(counts) / (time.perf_counter() - started), sum(failures)


def throughput_phase(variants: list[str], targets: list[Target], concurrency: int, seconds: float,
                     rounds: int, results: Results) -> None:
    """Rounds over every (variant, stack) pair, the order rotated each round, so a burst of
    other work on the box hits every measure alike."""
    cells = [(variant, target) for variant in variants for target in targets]
    for variant, target in cells:  # warm-up: the same concurrency, so every stack has its instances
        throughput(target, variant, concurrency, min(2.0, seconds))
    for i in range(rounds):
        shift = i % len(cells)
        ordered = cells[shift:] + cells[:shift]
        if i % 2:
            ordered.reverse()
        for variant, target in ordered:
            roots = {"server": target.server_pid}
            if target.name == "devenv":
                roots["devenv moto"] = target.extra_pids.get("emulator", 0)
            with CpuMeter(roots) as meter:
                rate, failures = throughput(target, variant, concurrency, seconds)
            if failures:
                results.errors[f"rps/{variant}/{target.name}"] = \
                    results.errors.get(f"rps/{variant}/{target.name}", 0) + failures
            results.rps.setdefault(variant, Pair()).of(target.name).append(rate)
            cpu = results.rps_cpu.setdefault(variant, {})
            shares = meter.breakdown()
            cpu.setdefault(f"load generator during {target.name}", []).append(shares["load generator"])
            cpu.setdefault(f"{target.name} server tree", []).append(shares["server"])
            cpu.setdefault(f"kernel softirq during {target.name}", []).append(shares["kernel softirq"])
            cpu.setdefault(f"everything else during {target.name}", []).append(shares["everything else"])


def handler_line(out: Path, before: int, index: int, timeout: float = 20.0) -> str | None:
    """The line the ``sqs`` handler wrote for message ``index`` into ``out`` past byte
    ``before`` (``i t started SentTimestamp ApproximateFirstReceiveTimestamp``), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists() and out.stat().st_size > before:
            with open(out) as handle:
                handle.seek(before)
                chunk = handle.read()
            if chunk.endswith("\n"):
                line = next((x for x in chunk.splitlines() if x.split()[0] == str(index)), None)
                if line:
                    return line
        time.sleep(0.002)  # polling interval of the measuring client
    return None


def sqs_phase(targets: list[Target], runs: int, warmup: int, gap: float, results: Results) -> None:
    """One message at a time, alternating stacks; the handler writes its start time."""
    def one(target: Target) -> tuple[float, float, float] | None:
        out = target.sqs_out
        index = target.sqs_sent
        target.sqs_sent += 1
        before = out.stat().st_size if out.exists() else 0
        sent = time.time()
        target.sqs_client.send_message(QueueUrl=target.queue_url,
                                       MessageBody=json.dumps({"i": index, "t": sent, "out": str(out)}))
        send_ms = (time.time() - sent) * 1000
        line = handler_line(out, before, index)
        if line is None:
            results.errors[f"sqs/{target.name}"] = results.errors.get(f"sqs/{target.name}", 0) + 1
            say(f"sqs: {target.name} did not run the handler for message {index} within 20 s")
            return None
        _, t_sent, started, sent_ts, received_ts = line.split()
        t_sent_ms, started_ms = float(t_sent) * 1000, float(started) * 1000
        parts = {"client -> queue stored it (SentTimestamp)": int(sent_ts) - t_sent_ms,
                 "stored -> first receive (ApproximateFirstReceiveTimestamp)": int(received_ts) - int(sent_ts),
                 "first receive -> handler start": started_ms - int(received_ts)}
        return started_ms - t_sent_ms, send_ms, parts

    for i in range(warmup):
        for target in alternate(i, targets):
            one(target)
            time.sleep(gap)
    results.errors = {k: v for k, v in results.errors.items() if not k.startswith("sqs/")}
    for i in range(runs):
        for target in alternate(i, targets):
            sample = one(target)
            if sample is not None:
                results.sqs.of(target.name).append(sample[0])
                results.sqs_send.of(target.name).append(sample[1])
                for part, value in sample[2].items():
                    results.sqs_parts.setdefault(part, Pair()).of(target.name).append(value)
            time.sleep(gap)
    failed = sum(v for k, v in results.errors.items() if k.startswith("sqs/"))
    if failed > max(1, runs // 20):
        raise BenchError(f"sqs: {failed} messages never reached the handler")


def direct_receive_phase(targets: list[Target], runs: int, warmup: int, gap: float, results: Results) -> None:
    """The limit: the same send, received by a boto3 long poll already waiting on a queue
    with no mapping (a thread of this process), alternating stacks."""
    def one(target: Target) -> float | None:
        box: dict = {}

        def receive() -> None:
            try:
                answer = target.receive_client.receive_message(QueueUrl=target.direct_url, WaitTimeSeconds=5,
                                                               MaxNumberOfMessages=1)
                box["at"] = time.time()
                box["messages"] = answer.get("Messages", [])
            except Exception as exc:  # reported below as a failure
                box["error"] = exc

        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        time.sleep(0.05)  # the receive is waiting in the server before the send
        sent = time.time()
        target.sqs_client.send_message(QueueUrl=target.direct_url, MessageBody=json.dumps({"t": sent}))
        thread.join(10)
        messages = box.get("messages") or []
        if not messages:
            results.errors[f"sqs-direct/{target.name}"] = results.errors.get(f"sqs-direct/{target.name}", 0) + 1
            return None
        target.sqs_client.delete_message(QueueUrl=target.direct_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        return (box["at"] - sent) * 1000

    for i in range(warmup):
        for target in alternate(i, targets):
            one(target)
    results.errors = {k: v for k, v in results.errors.items() if not k.startswith("sqs-direct/")}
    for i in range(runs):
        for target in alternate(i, targets):
            value = one(target)
            if value is not None:
                results.sqs_direct.of(target.name).append(value)
            time.sleep(gap)


def count_in(path: Path, needle: str) -> int:
    try:
        return path.read_text(errors="replace").count(needle)
    except OSError:
        return 0


def report_lines(log: Path) -> dict[str, dict[str, float]]:
    """request id -> {"duration": ms, "init": ms?} from devenv's REPORT lines."""
    found: dict[str, dict[str, float]] = {}
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return found
    for match in re.finditer(r"REPORT RequestId: (\S+)\tDuration: ([0-9.]+) ms[^\n]*?(?:Init Duration: ([0-9.]+) ms)?$",
                             text, re.M):
        entry = {"duration": float(match.group(2))}
        if match.group(3):
            entry["init"] = float(match.group(3))
        found[match.group(1)] = entry
    return found


def cold_phase(targets: list[Target], runs: int, project: Path, devenv_log: Path, ministack: Ministack,
               lam, results: Results) -> None:
    """First invoke after a code change: devenv sees the edited folder (hot reload); ministack
    gets UpdateFunctionCode with the same edited file. Only the invoke is timed."""
    handler = project / "code-cold" / "handler.py"
    original = handler.read_text()
    for i in range(runs):
        for target in alternate(i, targets):
            handler.write_text(original + f"# revision {i} for {target.name}\n")
            if target.name == "devenv":
                seen = count_in(devenv_log, "devenv: code changed")
                wait_for(lambda: count_in(devenv_log, "devenv: code changed") > seen, 15,
                         "devenv to notice the code change")
            else:
                lam.update_function_code(FunctionName="cold", ZipFile=code_zip(project / "code-cold"))
                wait_for(lambda: lam.get_function_configuration(FunctionName="cold").get("LastUpdateStatus")
                         == "Successful", 30, "ministack's code update")
                spawned = count_in(ministack.log, "Lambda worker spawned for cold ")
            conn = KeepAlive(target.invoke_port)
            try:
                ms, status, data, response = conn.request(*invoke_request("cold"))
            finally:
                conn.close()
            if not check_invoke(status, data, results, "cold"):
                continue
            if target.name == "devenv":
                request_id = response.getheader("x-amzn-RequestId") or ""
                entry = wait_for(lambda: report_lines(devenv_log).get(request_id), 5, "devenv's REPORT line")
                if "init" not in entry:
                    raise BenchError(f"devenv's invoke {request_id} after a code change was not a cold start")
                results.init_duration.append(entry["init"])
            elif count_in(ministack.log, "Lambda worker spawned for cold ") <= spawned:
                raise BenchError("ministack's invoke after UpdateFunctionCode did not spawn a new worker")
            results.cold.of(target.name).append(ms)
            time.sleep(0.2)
    handler.write_text(original)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FloorServer:
    """The reference: a bare aiohttp server in its own process, answering the invoke's bytes."""

    def __enter__(self) -> int:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", FLOOR_SERVER, str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(lambda: port_answers(self.port), 20, "the reference aiohttp server")
        except BaseException:
            self.__exit__()
            raise
        return self.port

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# ---------------------------------------------------------------- the run


def measure(args, cli, project: Path, tracker, ministack: Ministack, exe: Path, with_sqs: bool,
            results: Results, info: dict) -> None:
    results.load.append(("start", os.getloadavg()))
    say("starting ministack…")
    ministack.start(exe)
    say("devenv up…")
    cli.run("up", timeout=UP_TIMEOUT)
    record = lifecycle.expect_up(project, tracker)
    ports = record["ports"]
    compute = next(c for c in record["components"] if c["name"] == "lambda")
    emulator = next(c for c in record["components"] if c["name"] == "emulator")
    wanted = cli.env.get("PYTHONPATH")
    if wanted:  # the compute process must run the exported commit, not the working tree
        for pid in (record["supervisor_pid"], compute["pid"]):
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if f"PYTHONPATH={wanted}".encode() not in environ:
                raise BenchError(f"pid {pid} does not run with the benchmark's PYTHONPATH")
    info["python"] = lifecycle.cli_python(cli.command)

    say("deploying the same handler to ministack (boto3 against it)…")
    ms_endpoint = f"http://127.0.0.1:{ministack.port}"
    deployed = deploy_ministack(ms_endpoint, project, with_sqs)
    sqs_dir = Path(tempfile.mkdtemp(prefix="sqs-out-", dir=project))
    os.chmod(sqs_dir, 0o755)
    devenv = Target("devenv", ports["lambda"], ports["apigateway"], None, f"/{STAGE}",
                    f"http://127.0.0.1:{ports['emulator']}", compute["pid"],
                    extra_pids={"emulator": emulator["pid"]}, sqs_out=sqs_dir / "devenv.txt")
    mini = Target("ministack", ministack.port, ministack.port,
                  f"{deployed['api_id']}.execute-api.localhost:{ministack.port}", f"/{STAGE}", ms_endpoint,
                  ministack.proc.pid, sqs_out=sqs_dir / "ministack.txt")
    targets = [devenv, mini]
    devenv_logs = project / ".devenv" / "logs" / "functions"
    roots = {"devenv compute": devenv.server_pid, "devenv moto": emulator["pid"], "ministack": mini.server_pid}

    # Cold start 1: the very first invoke after deploy (one sample each).
    say("cold start: first invoke after deploy…")
    for target in targets:
        conn = KeepAlive(target.invoke_port)
        try:
            ms, status, data, _ = conn.request(*invoke_request("cold"))
        finally:
            conn.close()
        if check_invoke(status, data, results, "cold-first"):
            results.cold_first.of(target.name).append(ms)

    with FloorServer() as floor_port:
        for variant in ("silent", "logs"):
            say(f"warm invoke ({variant} handler): {args.invokes} interleaved rounds (devenv, ministack, "
                f"reference server) after {args.warmup} warm-up rounds…")
            with CpuMeter(roots) as meter:
                results.warm[variant], ids = latency_phase("warm", variant, targets, args.invokes, args.warmup,
                                                           results, floor_port, label=f"warm/{variant}")
            results.phase_cpu[f"warm invoke, {variant}"] = meter.breakdown()
            reports = report_lines(devenv_logs / f"{variant}.log")
            results.report_duration[variant] = [reports[i]["duration"] for i in ids if i in reports]
        for variant in ("silent", "logs"):
            say(f"warm invoke ({variant} handler), back to back: {args.invokes} per stack in blocks of "
                f"{args.block}…")
            with CpuMeter(roots) as meter:
                results.back_to_back[variant], _ = latency_phase(
                    "warm", variant, targets, args.invokes, args.block, results, floor_port, block=args.block,
                    label=f"warm back to back/{variant}")
            results.phase_cpu[f"warm invoke back to back, {variant}"] = meter.breakdown()
    for variant in ("silent", "logs"):
        say(f"API Gateway -> Lambda ({variant} handler): {args.api_requests} interleaved pairs…")
        with CpuMeter(roots) as meter:
            results.api[variant], _ = latency_phase("api", variant, targets, args.api_requests, args.warmup, results)
        results.phase_cpu[f"API latency, {variant}"] = meter.breakdown()
    ministack.note_tree()
    say(f"API Gateway throughput: {args.concurrency} connections, {args.seconds:g} s per stack and handler, "
        f"{args.rounds} rounds…")
    throughput_phase(["silent", "logs"], targets, args.concurrency, args.seconds, args.rounds, results)
    ministack.note_tree()

    if with_sqs:
        devenv.sqs_client = boto("sqs", devenv.sqs_endpoint)
        devenv.queue_url = devenv.sqs_client.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        mini.sqs_client = boto("sqs", ms_endpoint)
        mini.queue_url = deployed["queue_url"]
        say(f"SQS send -> handler start: {args.sqs_messages} messages per stack, one at a time…")
        with CpuMeter(roots) as meter:
            sqs_phase(targets, args.sqs_messages, 5, args.sqs_gap, results)
        results.phase_cpu["SQS"] = meter.breakdown()
        for target in targets:
            target.receive_client = boto("sqs", target.sqs_endpoint)
            target.direct_url = target.sqs_client.get_queue_url(QueueName=DIRECT_QUEUE)["QueueUrl"]
        say(f"limit: SQS send -> direct receive (no mapping): {args.sqs_messages} messages per stack…")
        direct_receive_phase(targets, args.sqs_messages, 5, args.sqs_gap, results)

    say(f"cold start after a code change: {args.cold_starts} per stack…")
    cold_phase(targets, args.cold_starts, project, devenv_logs / "cold.log", ministack, deployed["lambda"], results)
    ministack.note_tree()
    results.load.append(("end", os.getloadavg()))


# ---------------------------------------------------------------- reporting


@dataclass
class Row:
    label: str
    devenv: tuple[str, str]
    ministack: tuple[str, str]
    runs: str
    target: str
    verdict: str


def compare(d: float, m: float, lower_is_better: bool = True) -> str:
    if m <= 0 or d <= 0:
        return "—"
    if lower_is_better:
        return f"{m / d:.1f}× faster than ministack" if d < m else f"{d / m:.1f}× slower than ministack"
    return f"{d / m:.1f}× ministack's rate" if d >= m else f"{m / d:.1f}× below ministack's rate"


def latency_row(label: str, pair: Pair, target_key: str | None) -> Row:
    d50, d99 = pct(pair.devenv)
    m50, m99 = pct(pair.ministack)
    runs = str(len(pair.devenv)) if len(pair.devenv) == len(pair.ministack) else \
        f"{len(pair.devenv)} / {len(pair.ministack)}"
    verdict = []
    target = "—"
    if target_key:
        limit = TARGETS_MS[target_key]
        target = f"p50 <= {limit:g} ms"
        verdict.append("meets target" if d50 <= limit else "MISSES target")
    verdict.append(f"p50 {compare(d50, m50)}")
    if d99 > m99:
        verdict.append("p99 slower than ministack")
    return Row(label, (fmt_ms(d50), fmt_ms(d99)), (fmt_ms(m50), fmt_ms(m99)), runs, target, "; ".join(verdict))


def rows(results: Results, concurrency: int, block: int) -> list[Row]:
    out: list[Row] = []
    names = {"silent": "silent handler", "logs": "handler logs a line"}
    for variant in ("silent", "logs"):
        if variant in results.warm:
            out.append(latency_row(f"warm invoke, {names[variant]} (Invoke API, RequestResponse; stacks "
                                   "alternating request by request)", results.warm[variant], "warm"))
    for variant in ("silent", "logs"):
        if variant in results.back_to_back:
            out.append(latency_row(f"warm invoke, {names[variant]}, back to back (blocks of {block} "
                                   "consecutive requests per stack)", results.back_to_back[variant], "warm"))
    for pattern, prefix in (("alternating", "warm/"), ("back to back", "warm back to back/")):
        floor = [v for phase, values in results.floor.items() if phase.startswith(prefix) for v in values]
        if floor:
            f50, f99 = pct(floor)
            out.append(Row(f"reference: the same client and invoke request against a bare aiohttp server "
                           f"(no Lambda), {pattern} like the rows above", (fmt_ms(f50), fmt_ms(f99)), ("", ""),
                           str(len(floor)), "—", "the client + loopback HTTP floor inside the warm-invoke rows"))
    for variant in ("silent", "logs"):
        if variant in results.api:
            out.append(latency_row(f"API Gateway -> Lambda GET, {names[variant]}", results.api[variant], "api"))
    for variant in ("silent", "logs"):
        pair = results.rps.get(variant)
        if pair and pair.devenv and pair.ministack:
            d, m = statistics.median(pair.devenv), statistics.median(pair.ministack)
            out.append(Row(f"API Gateway -> Lambda req/s, {names[variant]}, {concurrency} connections "
                           "(p50 columns: median round; p99 columns: slowest round)",
                           (f"{d:.0f}/s", f"{min(pair.devenv):.0f}/s"),
                           (f"{m:.0f}/s", f"{min(pair.ministack):.0f}/s"),
                           f"{len(pair.devenv)} rounds", "—", compare(d, m, lower_is_better=False)))
    if results.sqs.devenv and results.sqs.ministack:
        out.append(latency_row("SQS send -> handler start (event source mapping)", results.sqs, "sqs"))
    if results.sqs_direct.devenv and results.sqs_direct.ministack:
        row = latency_row("limit: SQS send -> a waiting direct ReceiveMessage returns (no mapping)",
                          results.sqs_direct, None)
        row.verdict = "what each stack's SQS alone costs (BENCHMARKS.md's limit)"
        if results.sqs.devenv:
            row.verdict += (f"; devenv's mapping adds p50 {statistics.median(results.sqs.devenv) - statistics.median(results.sqs_direct.devenv):+.1f} ms, "
                            f"ministack's {statistics.median(results.sqs.ministack) - statistics.median(results.sqs_direct.ministack):+.1f} ms")
        out.append(row)
    if results.sqs_skipped:
        out.append(Row("SQS send -> handler start (event source mapping)", ("not measured", ""),
                       ("not measured", ""), "0", "p50 <= 100 ms", results.sqs_skipped))
    if results.cold.devenv and results.cold.ministack:
        out.append(latency_row("cold start: first invoke after a code change, client-side", results.cold, "cold"))
    if results.init_duration:
        d50, d99 = pct(results.init_duration)
        limit = TARGETS_MS["cold"]
        out.append(Row("cold start: devenv REPORT Init Duration (spawn -> first /next)", (fmt_ms(d50), fmt_ms(d99)),
                       ("not reported", ""), str(len(results.init_duration)), f"p50 <= {limit:g} ms",
                       "meets target" if d50 <= limit else "MISSES target"))
    if results.cold_first.devenv and results.cold_first.ministack:
        d, m = results.cold_first.devenv[0], results.cold_first.ministack[0]
        out.append(Row("cold start: very first invoke after deploy, client-side (one sample)",
                       (fmt_ms(d), ""), (fmt_ms(m), ""), "1",
                       f"<= {TARGETS_MS['cold']:g} ms",
                       ("meets target" if d <= TARGETS_MS["cold"] else "MISSES target") + f"; {compare(d, m)}"))
    return out


def table(results: Results, concurrency: int, block: int) -> str:
    lines = ["| row | devenv p50 | devenv p99 | ministack p50 | ministack p99 | runs | target | verdict |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for row in rows(results, concurrency, block):
        lines.append(f"| {row.label} | {row.devenv[0]} | {row.devenv[1]} | {row.ministack[0]} | "
                     f"{row.ministack[1]} | {row.runs} | {row.target} | {row.verdict} |")
    return "\n".join(lines)


def against_targets(results: Results) -> list[str]:
    """Plain verdicts on the issue's targets, from the figures above."""
    lines: list[str] = []

    def p50(values: list[float]) -> str:
        return fmt_ms(statistics.median(values))

    warm = [(f"{v}, alternating", results.warm[v]) for v in ("silent", "logs") if v in results.warm]
    warm += [(f"{v}, back to back", results.back_to_back[v]) for v in ("silent", "logs") if v in results.back_to_back]
    if warm:
        missed = [f"{name} {p50(pair.devenv)}" for name, pair in warm if statistics.median(pair.devenv) > TARGETS_MS["warm"]]
        met = [f"{name} {p50(pair.devenv)}" for name, pair in warm if statistics.median(pair.devenv) <= TARGETS_MS["warm"]]
        if not missed:
            lines.append(f"- Warm invoke p50 <= 2 ms: met in every pattern ({', '.join(met)}).")
        else:
            lines.append(f"- Warm invoke p50 <= 2 ms: MISSED for {', '.join(missed)}; met for "
                         f"{', '.join(met) or 'none'}.")
            for variant in ("silent", "logs"):
                pair, floor = results.warm.get(variant), results.floor.get(f"warm/{variant}")
                durations = results.report_duration.get(variant)
                if not (pair and pair.devenv and floor and durations):
                    continue
                total, bare, inside = statistics.median(pair.devenv), statistics.median(floor), statistics.median(durations)
                b2b = results.back_to_back.get(variant)
                b2b_floor = results.floor.get(f"warm back to back/{variant}")
                lines.append(
                    f"  Where the time goes ({variant}, alternating, p50 {fmt_ms(total)}): {fmt_ms(bare)} is the client "
                    "and one loopback HTTP exchange with an aiohttp server (the reference row, same client, same "
                    f"pattern); {fmt_ms(inside)} is devenv's runtime from hand-over to response (REPORT Duration: the "
                    "/next answer to awslambdaric, the handler, awslambdaric posting the result); the remaining (by subtraction) "
                    f"{fmt_ms(total - bare - inside)} is the Invoke API's own work and the wake-ups between the compute "
                    "process's event loop and the instance."
                    + (f" Back to back the same invoke takes {fmt_ms(statistics.median(b2b.devenv))} and the reference "
                       f"{fmt_ms(statistics.median(b2b_floor))}: most of the difference is processes waking from idle "
                       "(see the observations)." if b2b and b2b.devenv and b2b_floor else ""))
    api = [(v, results.api[v]) for v in ("silent", "logs") if v in results.api]
    if api:
        missed = [v for v, pair in api if statistics.median(pair.devenv) > TARGETS_MS["api"]]
        lines.append(f"- API Gateway request p50 <= 5 ms: {'MISSED for ' + ', '.join(missed) if missed else 'met'} "
                     f"({', '.join(f'{v} {p50(pair.devenv)}' for v, pair in api)}).")
    if results.sqs.devenv:
        d = statistics.median(results.sqs.devenv)
        lines.append(f"- SQS send -> handler start p50 <= 100 ms: {'met' if d <= TARGETS_MS['sqs'] else 'MISSED'} "
                     f"({fmt_ms(d)}).")
    elif results.sqs_skipped:
        lines.append(f"- SQS send -> handler start: not measured: {results.sqs_skipped}.")
    if results.cold.devenv:
        d = statistics.median(results.cold.devenv)
        extra = f", Init Duration p50 {p50(results.init_duration)}" if results.init_duration else ""
        lines.append(f"- Cold start <= 300 ms: {'met' if d <= TARGETS_MS['cold'] else 'MISSED'} (first invoke after "
                     f"a code change p50 {fmt_ms(d)}, p99 {fmt_ms(p99(results.cold.devenv))}{extra}).")
    compared = [("warm invoke " + n, pr) for n, pr in warm] + [("API " + v, pr) for v, pr in api]
    compared += [("API req/s " + v, pr) for v, pr in results.rps.items()]
    if results.sqs.devenv and results.sqs.ministack:
        compared.append(("SQS send -> handler start", results.sqs))
    if results.cold.devenv and results.cold.ministack:
        compared.append(("cold start after a code change", results.cold))
    slower = []
    for name, pair in compared:
        if not pair.devenv or not pair.ministack:
            continue
        d, m = statistics.median(pair.devenv), statistics.median(pair.ministack)
        if (d < m) if name.startswith("API req/s") else (d > m):
            slower.append(f"{name} (devenv p50 {d:.3g} vs ministack {m:.3g})")
    if slower:
        lines.append("- Faster than ministack on every row: NO. devenv is behind on: " + "; ".join(slower) + ".")
    elif compared:
        lines.append("- Faster than ministack on every row: yes, at p50 on every compared row.")
    if results.sqs.devenv and results.sqs_direct.devenv and results.sqs.ministack:
        lines.append(f"  The SQS gap is the emulator: a plain boto3 ReceiveMessage already waiting on a moto queue "
                     f"sees the message {p50(results.sqs_direct.devenv)} after the send begins; devenv's mapping "
                     f"(poller, event, invoke) adds {statistics.median(results.sqs.devenv) - statistics.median(results.sqs_direct.devenv):+.1f} ms "
                     "on top (see the breakdown below). ministack's mapping skips HTTP altogether (its poller reads "
                     "its own in-memory queue); its HTTP long poll (ReceiveMessage with WaitTimeSeconds) rechecks every 100 ms, hence its ~50 ms limit row.")
    return lines


def observations(results: Results, args) -> list[str]:
    lines: list[str] = []
    for variant, pair in results.warm.items():
        durations = results.report_duration.get(variant) or []
        if durations and pair.devenv:
            inside = statistics.median(durations)
            total = statistics.median(pair.devenv)
            lines.append(f"- devenv warm invoke ({variant}): median {fmt_ms(total)} at the client, of which "
                         f"{fmt_ms(inside)} is the runtime's own START→REPORT time (hand-over on /next, "
                         f"handler, awslambdaric posting the response); the other {fmt_ms(total - inside)} "
                         "is the Invoke API's HTTP hop, aiohttp and the event loop.")
    for variant in ("silent", "logs"):
        warm, api = results.warm.get(variant), results.api.get(variant)
        if warm and api and warm.devenv and api.devenv:
            d = statistics.median(api.devenv) - statistics.median(warm.devenv)
            m = statistics.median(api.ministack) - statistics.median(warm.ministack)
            lines.append(f"- API Gateway p50 minus warm invoke p50 ({variant}): devenv {d:+.2f} ms, "
                         f"ministack {m:+.2f} ms (what the API layer adds, within the noise of two phases).")
    for variant in ("silent", "logs"):
        alt, b2b = results.warm.get(variant), results.back_to_back.get(variant)
        f_alt = results.floor.get(f"warm/{variant}")
        f_b2b = results.floor.get(f"warm back to back/{variant}")
        if alt and b2b and f_alt and f_b2b and alt.devenv and b2b.devenv:
            lines.append(f"- Alternating vs back to back ({variant}): devenv p50 {fmt_ms(statistics.median(alt.devenv))} "
                         f"vs {fmt_ms(statistics.median(b2b.devenv))}; the bare reference server "
                         f"{fmt_ms(statistics.median(f_alt))} vs {fmt_ms(statistics.median(f_b2b))}. Alternating, every "
                         "request reaches processes that sat idle while the other stack answered (~9-55 ms); "
                         "waking them costs on this VM, and a devenv invoke wakes three processes in turn "
                         "(compute process, awslambdaric instance, compute process again) where the reference "
                         "server wakes one.")
    if "silent" in results.warm and "logs" in results.warm:
        s, l = results.warm["silent"], results.warm["logs"]
        lines.append(f"- ministack's silent handler pays its stderr wait: warm p50 {fmt_ms(statistics.median(s.ministack))} "
                     f"silent vs {fmt_ms(statistics.median(l.ministack))} logging; devenv "
                     f"{fmt_ms(statistics.median(s.devenv))} vs {fmt_ms(statistics.median(l.devenv))}.")
    if results.sqs.devenv and results.sqs.ministack:
        parts = "; ".join(f"{part}: devenv {statistics.median(pair.devenv):.1f} ms, ministack "
                          f"{statistics.median(pair.ministack):.1f} ms" for part, pair in results.sqs_parts.items())
        lines.append("- Where SQS send -> handler start goes (medians; the queue's timestamps have 1 ms "
                     f"resolution, so each part is ±1 ms): {parts}. The sender's send_message call "
                     f"returned after p50 {fmt_ms(statistics.median(results.sqs_send.devenv))} (devenv's "
                     f"emulator, moto) / {fmt_ms(statistics.median(results.sqs_send.ministack))} (ministack); "
                     "the handler can start before it returns.")
    for variant, cpu in results.rps_cpu.items():
        parts = ", ".join(f"{who} {statistics.median(v):.2f}" for who, v in sorted(cpu.items()))
        lines.append(f"- Cores busy (of 2) during the {variant}-handler throughput rounds, median of rounds: {parts}. "
                     "The load generator's share is CPU the servers could not use.")
    if results.phase_cpu:
        parts = "; ".join(f"{phase}: " + ", ".join(f"{who} {cores:.2f}" for who, cores in shares.items())
                          for phase, shares in results.phase_cpu.items())
        lines.append(f"- Cores busy on average (of 2) per sequential phase, from /proc: {parts}. "
                     "Kernel softirq (loopback networking among it) belongs to no process; \"everything else\" "
                     "is the machine's busy time minus all of the above: mostly other people's work on the "
                     "shared box.")
    if results.latency_cpu:
        parts = ", ".join(f"{phase} {us:.0f} µs" for phase, us in results.latency_cpu.items())
        lines.append(f"- Load generator CPU per request in the sequential phases (this process's user+system "
                     f"time over the phase / requests sent): {parts}. It is inside every client-side figure, "
                     "for both stacks alike.")
    if results.errors:
        lines.append(f"- Failed requests (not counted in the figures): {results.errors}.")
    else:
        lines.append("- Every measured request got the expected status and body; none failed.")
    return lines


def section(results: Results, args, info: dict, when: dt.datetime, took: float, problems: list[str]) -> str:
    m = lifecycle.machine()
    load = "; ".join(f"{w}: {a:.2f} {b:.2f} {c:.2f}" for w, (a, b, c) in results.load)
    lines = [
        SECTION_BEGIN,
        "## Lambda, API Gateway and SQS: devenv vs ministack",
        "",
        f"- Date: {when.strftime('%Y-%m-%d %H:%M UTC')} (the run took {took / 60:.1f} min)",
        f"- Machine: {m['nproc']} CPUs (nproc), {m['memory']} memory, {m['cpu']}, Linux {m['kernel']}; "
        "shared with other people's work (see the load average)",
        f"- Load average (1/5/15 min): {load}",
        f"- Git commit: {info['commit']}; {info['source']}",
        f"- Peer: ministack {info['ministack']} (PyPI, pinned; its own virtualenv), started with "
        f"`GATEWAY_PORT={args.ministack_port} BIND_HOST=127.0.0.1 TMPDIR=<dir> ministack`, default settings "
        "(LAMBDA_EXECUTOR=local: warm host subprocesses)",
        f"- Python (devenv, its awslambdaric instances, ministack and its workers): {info.get('python', '?')}",
        "- Handler: one module deployed to both (devenv runs the folder, ministack gets it zipped): "
        "`silent` returns a proxy response; `logs` prints one line first; `sqs` records its start time. "
        "python3.11, 128 MB, 3 s timeout.",
        "- Load generator: this script (CPython, same Python) on the same 2 cores as both stacks; its CPU "
        "use is in the observations below.",
        "",
        "### Method",
        "",
        "- Latency rows: one keep-alive `http.client` connection per stack (TCP_NODELAY set, as "
        "urllib3/boto3 do), identical requests; the stacks are called alternately, request by request, "
        f"the order flipped every round, after {args.warmup} warm-up rounds per phase. In the warm-invoke "
        "phases each round also sends the same request to a reference server (a bare aiohttp app in its "
        "own process answering the same bytes), in a rotating position: the client + loopback floor.",
        f"- Back-to-back rows: {args.block} consecutive requests to one stack (and to the reference "
        "server), then to the next, the order rotating, after one warm-up block each.",
        "- Warm invoke: `POST /2015-03-31/functions/{name}/invocations`, `X-Amz-Invocation-Type: "
        "RequestResponse`, a 36-byte JSON event (plus a dummy SigV4 `Authorization`, which ministack "
        "routes on and devenv ignores).",
        f"- API Gateway: `GET /{STAGE}/{{silent|logs}}/items/42?q=1` on a `/{{fn}}/{{proxy+}}` GET "
        "route with a Lambda proxy integration. devenv: `api:` in the benchmark's devenv.yaml; "
        "ministack: boto3 CreateRestApi, CreateResource ×2, PutMethod, PutIntegration (AWS_PROXY), "
        f"CreateDeployment against it, called with `Host: {{apiId}}.execute-api.localhost:{args.ministack_port}`.",
        f"- Throughput: {args.concurrency} threads, each with its own keep-alive connection, {args.seconds:g} s "
        f"per stack and handler, back to back, {args.rounds} rounds over the four (handler, stack) pairs in a "
        "rotating order, after a 2 s warm-up of each at the same concurrency; only 200 answers with the "
        "expected body count.",
        f"- SQS: boto3 send_message (the same botocore for both), one message at a time, {args.sqs_gap:g} s "
        "apart, stacks alternating, after 5 warm-up messages each; the figure is the handler's "
        "time.time() at entry minus the sender's time.time() just before send_message (one host clock). "
        "devenv: `events: [sqs: {queue, batch_size: 10}]` in devenv.yaml (its SQS is moto); ministack: "
        "CreateEventSourceMapping, BatchSize 10. The limit row sends the same way to a queue with no "
        "mapping while a boto3 ReceiveMessage (WaitTimeSeconds 5) already waits on it in a thread.",
        "- Cold start: the function's code is edited (one comment line) and the next invoke is timed; "
        "devenv notices the edit itself (hot reload, a fresh awslambdaric process), ministack gets "
        "UpdateFunctionCode with the same file (a fresh worker); the invoke is timed only once devenv has "
        "logged the change and ministack reports LastUpdateStatus Successful. Each is checked to be cold "
        "(devenv's REPORT line has Init Duration; ministack logged a new worker). Init Duration is "
        "devenv's own figure (instance spawn to its first /next); ministack reports none.",
        "",
        table(results, args.concurrency, args.block),
        "",
        "p50 is the median; p99 is nearest-rank (with fewer than 100 runs, the maximum). `runs` is the "
        "number of measured samples per stack. Targets are devenv's, from the issue; the verdict also "
        "compares with ministack measured in the same run.",
        "",
        "### Against the targets",
        "",
        *against_targets(results),
        "",
        "### Observations",
        "",
        *observations(results, args),
        *(f"- {note}" for note in results.notes),
        "",
        "### How to rerun",
        "",
        "`python benchmarks/lambda_vs_ministack.py --out benchmarks/RESULTS.md` from the repo root, with devenv's "
        "dependencies installed in that Python (it installs ministack "
        f"{MINISTACK_VERSION} into {MINISTACK_VENV} on first use). It needs port {args.ministack_port} free, "
        "takes a few minutes and leaves nothing running. It rewrites only this section of RESULTS.md.",
    ]
    if problems:
        lines += ["", "### Cleanup problems", "", *(f"- {p}" for p in problems)]
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


def samples(results: Results) -> dict[str, list[float]]:
    """devenv's side of every measure, for benchmarks/ab.py (ministack's stays in the table)."""
    out = {f"warm invoke, {v} handler (ms)": p.devenv for v, p in results.warm.items()}
    out |= {f"warm invoke back to back, {v} handler (ms)": p.devenv for v, p in results.back_to_back.items()}
    out |= {f"API Gateway -> Lambda, {v} handler (ms)": p.devenv for v, p in results.api.items()}
    out |= {f"API Gateway throughput, {v} handler (req/s)": p.devenv for v, p in results.rps.items()}
    out["SQS send -> handler start (ms)"] = results.sqs.devenv
    out["cold start after a code change (ms)"] = results.cold.devenv
    out["Init Duration (ms)"] = results.init_duration
    out |= {f"ministack (peer, same run): warm invoke, {v} handler (ms)": p.ministack
            for v, p in results.warm.items()}
    return out


def write_section(path: Path, text: str) -> None:
    current = path.read_text() if path.exists() else ""
    if SECTION_BEGIN in current and SECTION_END in current:
        head, rest = current.split(SECTION_BEGIN, 1)
        _, tail = rest.split(SECTION_END, 1)
        updated = head + text.rstrip("\n") + tail
    else:
        updated = current.rstrip("\n") + ("\n\n" if current else "") + text
    path.write_text(updated)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invokes", type=int, default=1000, help="measured warm invokes per stack and handler")
    parser.add_argument("--api-requests", type=int, default=1000, help="measured API requests per stack and handler")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up rounds before each latency phase")
    parser.add_argument("--sqs-messages", type=int, default=50, help="measured SQS messages per stack")
    parser.add_argument("--sqs-gap", type=float, default=0.15, help="seconds between SQS messages")
    parser.add_argument("--cold-starts", type=int, default=15, help="cold starts after a code change per stack")
    parser.add_argument("--block", type=int, default=100,
                        help="consecutive requests per stack in the back-to-back warm-invoke rows")
    parser.add_argument("--concurrency", type=int, default=4, help="connections in the throughput rounds")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per stack per throughput round")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds")
    parser.add_argument("--ministack-port", type=int, default=4567)
    parser.add_argument("--out", type=Path, help="write this section into that file (e.g. benchmarks/RESULTS.md)")
    parser.add_argument("--cli", help="command that runs devenv (default: the console script beside this Python)")
    parser.add_argument("--source", choices=("head", "worktree"), default="head",
                        help="head (default): devenv/ exported from HEAD with git archive; worktree: as it is")
    parser.add_argument("--commit", default="HEAD", help="with --source head: the commit to export (default HEAD)")
    parser.add_argument("--json", type=Path, help="also write devenv's samples here (benchmarks/ab.py reads them)")
    args = parser.parse_args(argv)
    for name in ("invokes", "api_requests", "sqs_messages", "cold_starts", "concurrency", "rounds", "block"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    command = lifecycle.cli_command(args.cli)
    info: dict = {}
    snapshot: Path | None = None
    if args.source == "head":
        snapshot = Path(tempfile.mkdtemp(prefix="devenv-bench-src-", dir="/tmp"))
        os.chmod(snapshot, 0o755)
        try:
            commit = lifecycle.export_head(snapshot, args.commit)
        except (BenchError, subprocess.SubprocessError, OSError) as exc:
            shutil.rmtree(snapshot, ignore_errors=True)
            say(f"benchmark failed: {exc}")
            return 1
        info["commit"] = lifecycle.git("rev-parse", "--short", commit)
        code_root = snapshot
    else:
        info["commit"] = lifecycle.git("rev-parse", "--short", "HEAD")
        code_root = REPO
    # event sources: a module before the compute/ packages (2026-12), a package since
    with_sqs = any((code_root / "devenv" / "compute" / name).exists() for name in ("event_sources.py", "event_sources"))

    try:
        exe = Ministack.ensure_installed()
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
        say(f"benchmark failed: could not install ministack: {exc}")
        return 1

    project = Path(tempfile.mkdtemp(prefix="devenv-lambda-bench-", dir="/tmp"))
    os.chmod(project, 0o755)
    for folder in ("code", "code-cold"):
        (project / folder).mkdir()
        (project / folder / "handler.py").write_text(HANDLER)
    (project / "devenv.yaml").write_text(DEVENV_YAML.format(
        queue=QUEUE, direct_queue=DIRECT_QUEUE, stage=STAGE, sqs_function=SQS_FUNCTION.format(queue=QUEUE) if with_sqs else ""))
    ms_tmp = Path(tempfile.mkdtemp(prefix="ministack-bench-", dir="/tmp"))
    os.chmod(ms_tmp, 0o755)
    cli = lifecycle.Cli(command, project, snapshot)
    tracker = lifecycle.Tracker()
    ministack = Ministack(args.ministack_port, ms_tmp)
    results = Results()
    if not with_sqs:
        results.sqs_skipped = (f"devenv/compute/event_sources is not in commit {info['commit']}: "
                               "the SQS event source mapping could not be measured")
    running_from = lifecycle.which_devenv(lifecycle.cli_python_exe(command), cli.env, project)
    if snapshot is not None:
        if not running_from.startswith(str(snapshot)):
            shutil.rmtree(snapshot, ignore_errors=True)
            shutil.rmtree(project, ignore_errors=True)
            shutil.rmtree(ms_tmp, ignore_errors=True)
            say(f"benchmark failed: PYTHONPATH did not take: devenv imports from {running_from}")
            return 1
        info["source"] = ("devenv/ exported from that commit with `git archive` and put first on PYTHONPATH "
                          "(checked in the supervisor's and the compute process's environment), so "
                          "concurrent edits in the working tree did not reach the run")
    else:
        info["source"] = "the working tree as it was (may include others' uncommitted edits)"

    def on_term(signum, frame):
        INTERRUPTED_BY_SIGNAL[0] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    when = dt.datetime.now(dt.timezone.utc)
    started = time.monotonic()
    say(f"project {project}; ministack temp {ms_tmp}; devenv from {running_from} (commit {info['commit']})")
    failed: BaseException | None = None
    try:
        measure(args, cli, project, tracker, ministack, exe, with_sqs, results, info)
    except (BenchError, KeyboardInterrupt, OSError, subprocess.SubprocessError) as exc:
        failed = exc
    except Exception as exc:  # boto errors and the like: still clean up, then say what happened
        failed = exc
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        problems = ministack.stop()
        problems += lifecycle.cleanup(cli, tracker)
        shutil.rmtree(ms_tmp, ignore_errors=True)
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    took = time.monotonic() - started
    info["ministack"] = ministack.version()
    for problem in problems:
        say(f"cleanup: {problem}")
    if isinstance(failed, KeyboardInterrupt):
        say("interrupted; devenv is down, ministack stopped, folders removed")
        return 130
    if failed is not None:
        say(f"benchmark failed: {type(failed).__name__}: {failed}")
        return 1

    print(table(results, args.concurrency, args.block))
    print()
    for line in against_targets(results):
        print(line)
    for line in observations(results, args):
        print(line)
    if args.json:
        write_samples(args.json, info["commit"], samples(results))
    if args.out:
        write_section(args.out, section(results, args, info, when, took, problems))
        say(f"wrote the section into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
