"""ECS emulation and the internal ALB, measured: request latency and throughput straight to a
task vs through the ALB, kill -9 of a task -> replacement serving, failed requests during a
rolling deploy under steady load.

    python benchmarks/ecs_alb.py [--seconds 5] [--rounds 5] [--messages 500] [--out benchmarks/RESULTS.md]
                                 [--commit REV] [--json FILE]

Runs devenv from the working tree on a throwaway project under /tmp (a tiny ASGI service on
uvicorn behind the ALB, 2 tasks), always ending with `devenv down --volumes`.

Latency and throughput come from wrk (a C load generator, ``apt-get install wrk``), which
shares the 2 cores with the ALB and the tasks but needs far less CPU per request than a
Python client: p50/p99 from ``wrk --latency`` on one connection (a closed loop, one request
at a time), req/s from 4 keep-alive connections. Direct and ALB runs alternate within each
round after a warm-up of both. "Direct" spreads its connections over both tasks (2 each, two
wrk processes at once, summed), so both sides have the same backend capacity; one task alone
is reported too. CPU per request (tasks, and the ``ecs`` process the ALB runs in) comes from
/proc during the 4-connection runs: it explains the throughput ratio on a CPU-bound box. The
failed-requests count during rolling deploys uses a Python http.client loop (it needs every
request's outcome).

WebSocket and gRPC: a second stack after the first is down, with the tests' fixture services
(tests/integration/alb/backend.py's WebSocket echo on aiohttp, tests/fixtures/services/grpc on
grpcio behind a GRPC target group), one task each; p50 of one message's round trip on an open
WebSocket and of one unary call on an open channel, straight to the task and through the ALB,
alternating in each round (Python clients: aiohttp and grpcio, the same on both paths).

Peer: HAProxy (a production C load balancer, ``apt-get install haproxy``), started by this
script in front of the same two tasks with what the ALB does on each request (round robin,
keep-alive pooling to the targets, X-Forwarded-For/Proto/Port and an X-Amzn-Trace-Id added),
one thread, bound to 127.0.0.1, measured in the same rounds. It answers what share of direct
throughput any proxy on these same 2 cores can keep. Without haproxy on PATH the peer rows say
so and the rest runs.

Floor: benchmarks/floor_proxy.py, the least a Python proxy on uvloop and httptools does per
request (parse both ways, the ALB's four headers, round robin, keep-alive), measured in the
same rounds: what devenv's ALB could reach without its own work (rules, guard, metrics,
stickiness, timeouts, error handling), so that a gap to HAProxy reads as Python's or the ALB's.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from results import write_samples, write_section  # noqa: E402

from devenv.runtime.ports import free_port  # noqa: E402  (the stack's own free-port finder)

APP = '''
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b'{"ok": true, "task": "%s"}' % os.environ.get("ECS_TASK_ID", "").encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
'''

STACK = """\
name: benchecs
infra: {postgres: false, redis: false}
load_balancer: {idle_timeout: 10}
services:
  echo:
    build: svc
    requirements: requirements.txt
    command: [python, -m, uvicorn, app:app, --host, "${TASK_IP}", --port, "8000", --no-access-log,
              --log-level, warning]
    cpu: 1024
    memory: 2048
    desired_count: 2
    health_check:
      command: [CMD-SHELL, "curl -f http://localhost:8000/health || exit 1"]
      interval: 0.5
      timeout: 1
      retries: 2
      start_period: 1
    deployment: {minimum_healthy_percent: 100, maximum_percent: 200}
    load_balancer:
      paths: ["/*"]
      priority: 1
      deregistration_delay: 2
      health_check: {path: /health, interval: 0.5, timeout: 1, healthy_threshold: 2, unhealthy_threshold: 5}
"""


PROTOCOLS_STACK = """\
name: benchproto
infra: {postgres: false, redis: false}
load_balancer: {idle_timeout: 10}
tracing: {enabled: false}
services:
  ws:
    build: ws
    requirements: requirements.txt
    command: [python, task.py]
    desired_count: 1
    load_balancer:
      paths: ["/ws"]
      priority: 1
      health_check: {path: /health, interval: 0.5, timeout: 1, healthy_threshold: 2, unhealthy_threshold: 5}
  grpc:
    build: grpc
    command: [python, app.py]
    requirements: requirements.txt
    desired_count: 1
    load_balancer:
      paths: ["/devenv.test.Echo/*"]
      priority: 2
      protocol_version: GRPC
      health_check: {interval: 0.5, timeout: 1, healthy_threshold: 2, unhealthy_threshold: 5}
"""

WS_TASK = '''
import os

from aiohttp import web

from backend import Backend

web.run_app(Backend(os.environ.get("ECS_TASK_ID", "task"), os.environ["TASK_IP"]).app(), host=os.environ["TASK_IP"],
            port=int(os.environ["PORT"]), access_log=None, print=None)
'''

DEVENV_ENV = dict(os.environ)  # with --commit: PYTHONPATH puts that commit's devenv/ first


def devenv(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "devenv", *args, "--file", str(project / "devenv.yaml")],
                            capture_output=True, text=True, timeout=180, cwd=project, env=DEVENV_ENV)
    if check and result.returncode:
        raise SystemExit(f"devenv {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def control(project: Path) -> str:
    ports = json.loads((project / ".devenv" / "ports.json").read_text())
    return f"http://127.0.0.1:{ports['ecs']}"


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def running(project: Path) -> list[dict]:
    return [t for t in get_json(control(project) + "/tasks?stopped=0")["tasks"] if t["lastStatus"] == "RUNNING"]


def healthy_count(project: Path) -> int:
    return get_json(control(project) + "/services")["services"][0]["healthyCount"]


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def hammer(host: str, port: int, seconds: float, threads: int) -> tuple[list[float], int, int]:
    """Latencies (ms) of every request, requests done, failures, over ``seconds``."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine = []
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                conn.request("GET", "/work")
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            mine.append((time.perf_counter() - start) * 1000)
            if not ok:
                with lock:
                    failures[0] += 1
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies, len(latencies), failures[0]


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: float, connections: int, latency: bool = False) -> subprocess.Popen:
    """Starts wrk (one thread) against ``url``; ``read_wrk`` collects its figures."""
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
                             *(["--latency"] if latency else []), url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_wrk(process: subprocess.Popen) -> dict[str, float]:
    """rps, errors (non-2xx/3xx and socket errors) and, with --latency, p50/p99 in ms."""
    out, _ = process.communicate(timeout=120)
    figures: dict[str, float] = {"errors": 0.0}
    for line in out.splitlines():
        line = line.strip()
        if match := re.match(r"(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)$", line):
            figures[f"p{match[1]}"] = float(match[2]) * UNITS[match[3]]
        elif line.startswith("Requests/sec:"):
            figures["rps"] = float(line.split()[1])
        elif line.startswith("Non-2xx or 3xx responses:"):
            figures["errors"] += float(line.split()[-1])
        elif line.startswith("Socket errors:"):
            figures["errors"] += sum(float(n) for n in re.findall(r"\d+", line))
    if "rps" not in figures:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    return figures


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (Linux /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def export_commit(revision: str, into: Path) -> str:
    """``revision``'s devenv/ package, exported with git archive into ``into``; its short hash."""
    commit = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "--short", f"{revision}^{{commit}}"],
                            capture_output=True, text=True, cwd=ROOT).stdout.strip()
    if not commit:
        raise SystemExit(f"{revision!r} is not a commit of this checkout")
    archive = subprocess.run(["git", "archive", commit, "devenv"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit


def ecs_process(project: Path) -> int:
    """The pid of the stack's ``ecs`` process, where the ALB runs."""
    needle = str(project / "devenv.yaml").encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            # the module's name since the compute/ packages (2026-12), and before
            if (b"devenv.compute.ecs_process" in cmdline or b"devenv.compute.ecs_server" in cmdline) \
                    and needle in cmdline:
                return int(entry.name)
    raise SystemExit("could not find the ecs process")


def task_parser() -> str:
    """The HTTP parser uvicorn picks in the tasks (``python`` on PATH): httptools when that
    interpreter has it, else h11."""
    found = subprocess.run(["python", "-c", "import httptools"], capture_output=True).returncode == 0
    return "httptools" if found else "h11"


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    out = done.stdout + done.stderr
    match = re.search(r"wrk (\S+)", out)
    return match[1] if match else "?"


HAPROXY_CONFIG = """\
global
    maxconn 4096
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s
    http-reuse always
frontend alb
    bind 127.0.0.1:{port}
    unique-id-format Root=1-%[date,hex]-%[rand,hex]%[rand,hex]%[rand,hex]
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Port {port}
    http-request set-header X-Amzn-Trace-Id %[unique-id]
    default_backend echo
backend echo
    balance roundrobin
{servers}
"""


def wait_for_peer(process: subprocess.Popen, url: str, name: str) -> None:
    """Waits until the peer ``process`` answers 200 at ``url``; SystemExit when it exits."""

    def answers() -> bool:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited: {process.stderr.read() if process.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    wait(answers, 10, f"{name} to answer")


class Haproxy:
    """The peer: HAProxy in front of ``targets`` (host:port), on a free 127.0.0.1 port."""

    def __init__(self, folder: Path, targets: list[str]):
        self.port = free_port()
        servers = "\n".join(f"    server t{i} {target}" for i, target in enumerate(targets))
        config = folder / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=self.port, servers=servers))
        self.process = subprocess.Popen(["haproxy", "-db", "-f", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{self.port}/work"
        wait_for_peer(self.process, self.url, "haproxy")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Floor:
    """The second peer: benchmarks/floor_proxy.py (the least a Python proxy on uvloop and
    httptools does per request) in front of ``targets``, on a free 127.0.0.1 port."""

    def __init__(self, targets: list[str]):
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "floor_proxy.py"), str(self.port),
                                         *targets], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{self.port}/work"
        wait_for_peer(self.process, self.url, "floor_proxy.py")

    stop = Haproxy.stop


def haproxy_version() -> str:
    done = subprocess.run(["haproxy", "-v"], capture_output=True, text=True)
    match = re.search(r"version (\S+)", done.stdout)
    return match[1] if match else "?"


def protocol_rows(rounds: int, messages: int) -> list[tuple[str, str, str, str, str]]:
    """WebSocket message round trip and gRPC unary call p50, straight to a task and through the
    ALB, on a second stack of the tests' fixture services (see the module's docstring)."""
    import asyncio

    import aiohttp

    try:
        import grpc
    except ImportError:
        grpc = None
    project = Path(tempfile.mkdtemp(prefix="devenv-bench-proto-"))
    os.chmod(project, 0o755)
    (project / "ws").mkdir()
    shutil.copy(ROOT / "tests" / "integration" / "alb" / "backend.py", project / "ws" / "backend.py")
    (project / "ws" / "task.py").write_text(WS_TASK)
    (project / "ws" / "requirements.txt").write_text("aiohttp\n")
    shutil.copytree(ROOT / "tests" / "fixtures" / "services" / "grpc", project / "grpc")
    (project / "devenv.yaml").write_text(PROTOCOLS_STACK)
    try:
        devenv(project, "up")

        def serving() -> bool:
            services = get_json(control(project) + "/services")["services"]
            return len(services) == 2 and all(s["healthyCount"] == 1 for s in services)

        wait(serving, 120, "the WebSocket and gRPC tasks healthy")
        alb = f"127.0.0.1:{json.loads((project / '.devenv' / 'ports.json').read_text())['alb']}"
        address = {task["service"]: task["address"] for task in running(project)}

        async def ws_round_trips(where: str) -> list[float]:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"http://{where}/ws") as socket:
                    times = []
                    for i in range(messages + 20):
                        start = time.perf_counter()
                        await socket.send_str("m")
                        answer = await socket.receive()
                        if answer.type != aiohttp.WSMsgType.TEXT or not answer.data.endswith(": m"):
                            raise SystemExit(f"WebSocket echo through {where} answered {answer!r}")
                        if i >= 20:  # the first ones warm up
                            times.append((time.perf_counter() - start) * 1000)
                    return times

        def grpc_calls(where: str) -> list[float]:
            with grpc.insecure_channel(where) as channel:
                say = channel.unary_unary("/devenv.test.Echo/Say")
                times = []
                for i in range(messages + 20):
                    start = time.perf_counter()
                    if not say(b"m", timeout=10).endswith(b": m"):
                        raise SystemExit(f"gRPC Say through {where} answered wrong")
                    if i >= 20:
                        times.append((time.perf_counter() - start) * 1000)
                return times

        p50s: dict[str, list[float]] = {"ws-direct": [], "ws-alb": [], "grpc-direct": [], "grpc-alb": []}
        for _ in range(rounds):
            for name, where in (("ws-direct", address["ws"]), ("ws-alb", alb)):
                p50s[name].append(statistics.median(asyncio.run(ws_round_trips(where))))
            if grpc is not None:
                for name, where in (("grpc-direct", address["grpc"]), ("grpc-alb", alb)):
                    p50s[name].append(statistics.median(grpc_calls(where)))
    finally:
        devenv(project, "down", "--volumes", check=False)
        shutil.rmtree(project, ignore_errors=True)

    def cell(name: str) -> str:
        values = p50s[name]
        return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"

    def added(what: str) -> str:
        return f"ALB adds {statistics.median(p50s[what + '-alb']) - statistics.median(p50s[what + '-direct']):.3f} ms"

    rows = [("WebSocket message round trip p50, 1 open socket (ms)", cell("ws-direct"), cell("ws-alb"),
             f"{added('ws')}; median of {rounds} runs of {messages} messages (min-max); aiohttp client and echo", "")]
    if grpc is None:
        rows.append(("gRPC unary call p50 (ms)", "", "not measured", "grpcio is not installed (the test extra)", ""))
    else:
        rows.append(("gRPC unary call p50, 1 open channel, GRPC target group (ms)", cell("grpc-direct"),
                     cell("grpc-alb"), f"{added('grpc')}; median of {rounds} runs of {messages} calls (min-max); "
                     "grpcio client and server", ""))
    return rows


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--messages", type=int, default=500,
                        help="WebSocket messages and gRPC calls per run of the protocol rows")
    parser.add_argument("--tracing", choices=("on", "off"), default="on",
                        help="devenv's span recording (on by default in devenv.yaml): the ALB records two spans per request")
    parser.add_argument("--commit", help="run devenv/ exported from this commit (git archive, first on "
                                         "PYTHONPATH) instead of the working tree")
    parser.add_argument("--json", type=Path, help="also write the samples here (benchmarks/ab.py reads them)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    snapshot: Path | None = None
    if args.commit:
        snapshot = Path(tempfile.mkdtemp(prefix="devenv-bench-src-", dir="/tmp"))
        os.chmod(snapshot, 0o755)
        commit = export_commit(args.commit, snapshot)
        DEVENV_ENV["PYTHONPATH"] = os.pathsep.join(filter(None, [str(snapshot), os.environ.get("PYTHONPATH")]))
    if shutil.which("wrk") is None:
        print("benchmarks/ecs_alb.py needs wrk (a C HTTP load generator) on PATH: "
              "`apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk` (macOS).", file=sys.stderr)
        return 2
    project = Path(tempfile.mkdtemp(prefix="devenv-bench-ecs-"))
    os.chmod(project, 0o755)
    (project / "svc").mkdir()
    (project / "svc" / "app.py").write_text(APP)
    (project / "svc" / "requirements.txt").write_text("uvicorn\n")  # the task's own environment
    (project / "devenv.yaml").write_text(STACK + f"tracing: {{enabled: {'true' if args.tracing == 'on' else 'false'}}}\n")
    rows = []
    peer: Haproxy | None = None
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        devenv(project, "up")
        wait(lambda: healthy_count(project) == 2, 60, "2 healthy tasks")
        alb_port = json.loads((project / ".devenv" / "ports.json").read_text())["alb"]
        tasks = [t["address"] for t in running(project)]
        alb = f"http://127.0.0.1:{alb_port}/work"
        direct = [f"http://{address}/work" for address in tasks]
        if shutil.which("haproxy"):
            peer = Haproxy(project, tasks)
        floor = Floor(tasks)
        for url in (*direct, alb, floor.url, *([peer.url] if peer else [])):  # warm-up, every path
            read_wrk(wrk(url, 1, 4))
        runs: dict[str, list[dict[str, float]]] = {"direct-lat": [], "alb-lat": [], "direct": [],
                                                    "direct-1": [], "alb": [], "peer-lat": [], "peer": [],
                                                    "floor-lat": [], "floor": []}
        ecs_pid, task_pids = ecs_process(project), [t["pid"] for t in running(project)]

        def per_request(pids: list[int], start: float, figures: dict[str, float]) -> float:
            return (cpu_seconds(pids) - start) / (figures["rps"] * args.seconds) * 1e6

        def loaded(url: str, proxy_pid: int, key: str) -> dict[str, float]:
            """A 4-connection run through a proxy: wrk's figures, and the tasks' and the
            proxy's CPU per request (``key``)."""
            tasks_before, proxy_before = cpu_seconds(task_pids), cpu_seconds([proxy_pid])
            figures = read_wrk(wrk(url, args.seconds, 4))
            figures["task_cpu"] = per_request(task_pids, tasks_before, figures)
            figures[key] = per_request([proxy_pid], proxy_before, figures)
            return figures

        for _ in range(args.rounds):  # interleaved within each round
            runs["direct-lat"].append(read_wrk(wrk(direct[0], args.seconds, 1, latency=True)))
            runs["alb-lat"].append(read_wrk(wrk(alb, args.seconds, 1, latency=True)))
            tasks_before = cpu_seconds(task_pids)
            both = [wrk(url, args.seconds, 2) for url in direct]
            parts = [read_wrk(p) for p in both]
            figures = {"rps": sum(p["rps"] for p in parts), "errors": sum(p["errors"] for p in parts)}
            figures["task_cpu"] = per_request(task_pids, tasks_before, figures)
            runs["direct"].append(figures)
            runs["alb"].append(loaded(alb, ecs_pid, "alb_cpu"))
            runs["direct-1"].append(read_wrk(wrk(direct[0], args.seconds, 4)))
            if peer is not None:
                runs["peer-lat"].append(read_wrk(wrk(peer.url, args.seconds, 1, latency=True)))
                runs["peer"].append(loaded(peer.url, peer.process.pid, "peer_cpu"))
            runs["floor-lat"].append(read_wrk(wrk(floor.url, args.seconds, 1, latency=True)))
            runs["floor"].append(loaded(floor.url, floor.process.pid, "floor_cpu"))
        floor.stop()
        if peer is not None:
            peer.stop()
            peer = None
        errors = sum(r["errors"] for rs in runs.values() for r in rs)
        if errors:
            raise SystemExit(f"{errors:g} failed requests during the latency/throughput runs")

        def med(name: str, key: str) -> float:
            return statistics.median(r[key] for r in runs[name])

        def spread(name: str, key: str, fmt: str) -> str:
            values = [r[key] for r in runs[name]]
            return f"{format(min(values), fmt)}-{format(max(values), fmt)}"

        n = args.rounds
        rows.append(("request p50, 1 connection (ms)", f"{med('direct-lat', 'p50'):.3f} ({spread('direct-lat', 'p50', '.3f')})",
                     f"{med('alb-lat', 'p50'):.3f} ({spread('alb-lat', 'p50', '.3f')})",
                     f"ALB adds {med('alb-lat', 'p50') - med('direct-lat', 'p50'):.3f} ms; median of {n} runs (min-max)",
                     "<= 1 ms added"))
        rows.append(("request p99, 1 connection (ms)", f"{med('direct-lat', 'p99'):.3f} ({spread('direct-lat', 'p99', '.3f')})",
                     f"{med('alb-lat', 'p99'):.3f} ({spread('alb-lat', 'p99', '.3f')})",
                     f"median of {n} runs (min-max)", ""))
        ratios = sorted(a["rps"] / d["rps"] for a, d in zip(runs["alb"], runs["direct"]))
        rows.append(("throughput, 4 connections (req/s)",
                     f"{med('direct', 'rps'):.0f} ({spread('direct', 'rps', '.0f')}), both tasks",
                     f"{med('alb', 'rps'):.0f} ({spread('alb', 'rps', '.0f')})",
                     f"ALB keeps {100 * statistics.median(ratios):.0f}% (per round {100 * ratios[0]:.0f}-"
                     f"{100 * ratios[-1]:.0f}%); {n} runs", ">= 70%"))
        rows.append(("CPU per request in the 4-connection runs (us)",
                     f"tasks {med('direct', 'task_cpu'):.0f}",
                     f"tasks {med('alb', 'task_cpu'):.0f} + ALB process {med('alb', 'alb_cpu'):.0f}",
                     "from /proc; the ALB process also runs the scheduler and health checks", ""))
        rows.append(("throughput, 4 connections to one task (req/s)",
                     f"{med('direct-1', 'rps'):.0f} ({spread('direct-1', 'rps', '.0f')})", "", 
                     f"ALB/one task {100 * med('alb', 'rps') / med('direct-1', 'rps'):.0f}% (the pre-wrk peer)", ""))
        if runs["peer"]:
            name = f"HAProxy {haproxy_version()}"
            peer_ratios = sorted(p["rps"] / d["rps"] for p, d in zip(runs["peer"], runs["direct"]))
            rows.append((f"peer: request p50, 1 connection, through {name} (ms)", "",
                         f"{med('peer-lat', 'p50'):.3f} ({spread('peer-lat', 'p50', '.3f')})",
                         f"HAProxy adds {med('peer-lat', 'p50') - med('direct-lat', 'p50'):.3f} ms", ""))
            rows.append((f"peer: throughput, 4 connections, through {name} (req/s)", "",
                         f"{med('peer', 'rps'):.0f} ({spread('peer', 'rps', '.0f')})",
                         f"HAProxy keeps {100 * statistics.median(peer_ratios):.0f}% (per round "
                         f"{100 * peer_ratios[0]:.0f}-{100 * peer_ratios[-1]:.0f}%); devenv's ALB "
                         f"{100 * med('alb', 'rps') / med('peer', 'rps'):.0f}% of HAProxy's req/s", ""))
            rows.append(("peer: CPU per request through HAProxy (us)", "",
                         f"tasks {med('peer', 'task_cpu'):.0f} + haproxy {med('peer', 'peer_cpu'):.0f}",
                         "from /proc, same rounds", ""))
        else:
            rows.append(("peer: HAProxy", "", "not measured", "haproxy is not on PATH "
                         "(`apt-get install -y haproxy`)", ""))
        floor_ratios = sorted(f["rps"] / d["rps"] for f, d in zip(runs["floor"], runs["direct"]))
        rows.append(("floor: request p50, 1 connection, through benchmarks/floor_proxy.py (ms)", "",
                     f"{med('floor-lat', 'p50'):.3f} ({spread('floor-lat', 'p50', '.3f')})",
                     f"the floor adds {med('floor-lat', 'p50') - med('direct-lat', 'p50'):.3f} ms", ""))
        rows.append(("floor: throughput, 4 connections, through benchmarks/floor_proxy.py (req/s)", "",
                     f"{med('floor', 'rps'):.0f} ({spread('floor', 'rps', '.0f')})",
                     f"the floor keeps {100 * statistics.median(floor_ratios):.0f}%"
                     + (f"; {100 * med('floor', 'rps') / med('peer', 'rps'):.0f}% of HAProxy's req/s"
                        if runs["peer"] else ""), ""))
        rows.append(("floor: CPU per request through benchmarks/floor_proxy.py (us)", "",
                     f"tasks {med('floor', 'task_cpu'):.0f} + floor {med('floor', 'floor_cpu'):.0f}",
                     "from /proc, same rounds", ""))

        # kill -9 -> replacement serving through the ALB
        replacements = []
        for _ in range(args.rounds):
            wait(lambda: healthy_count(project) == 2, 60, "2 healthy tasks")
            before = {t["taskId"] for t in running(project)}
            victim = running(project)[0]
            start = time.monotonic()
            os.kill(victim["pid"], signal.SIGKILL)

            def replaced() -> bool:
                ids = {t["taskId"] for t in running(project)}
                return victim["taskId"] not in ids and bool(ids - before) and healthy_count(project) == 2

            wait(replaced, 60, "replacement healthy")
            replacements.append(time.monotonic() - start)
        rows.append(("kill -9 -> replacement healthy in the target group (s)",
                     f"median {statistics.median(replacements):.2f}", f"max {max(replacements):.2f}",
                     f"{len(replacements)} kills", "-"))

        # rolling deploy under steady load
        failed_total, requests_total = 0, 0
        for _ in range(args.rounds):
            wait(lambda: healthy_count(project) == 2, 60, "2 healthy tasks")
            before = get_json(control(project) + "/services")["services"][0]["revision"]
            result: dict = {}
            loader = threading.Thread(target=lambda: result.update(
                zip(("lat", "n", "failed"), hammer("127.0.0.1", alb_port, 12.0, 2))))
            loader.start()
            time.sleep(1.0)  # let the load reach steady state before deploying
            urllib.request.urlopen(urllib.request.Request(control(project) + "/services/echo/deploy", data=b"{}",
                                                          method="POST"), timeout=5).read()
            wait(lambda: all(t["revision"] == before + 1 for t in running(project)) and healthy_count(project) == 2,
                 60, "rollout")
            loader.join()
            failed_total += result["failed"]
            requests_total += result["n"]
        rows.append(("failed requests during rolling deploys under load", str(failed_total),
                     f"of {requests_total}", f"{args.rounds} deploys, 2 clients", "0"))
    except SystemExit:
        log = project / ".devenv" / "logs"
        for name in ("ecs.log", "services/echo.log"):
            if (log / name).exists():
                print(f"--- {name}\n" + (log / name).read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        if peer is not None:
            peer.stop()
        devenv(project, "down", "--volumes", check=False)
        shutil.rmtree(project, ignore_errors=True)
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)

    rows += protocol_rows(args.rounds, args.messages)
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.json:
        write_samples(args.json, commit, {
            "ALB request p50, 1 connection (ms)": [r["p50"] for r in runs["alb-lat"]],
            "ALB request p99, 1 connection (ms)": [r["p99"] for r in runs["alb-lat"]],
            "ALB throughput, 4 connections (req/s)": [r["rps"] for r in runs["alb"]],
            "ALB process CPU per request (us)": [r["alb_cpu"] for r in runs["alb"]],
            "kill -9 -> replacement healthy (s)": replacements,
            "failed requests during rolling deploys": [failed_total],
            "direct to a task (peer, same run): p50 (ms)": [r["p50"] for r in runs["direct-lat"]],
        })
    table = ["| measure | direct / value | through ALB / spread | note | target |", "|---|---|---|---|---|"]
    table += [f"| {' | '.join(row)} |" for row in rows]
    header = (f"## ECS and the internal ALB ({datetime.date.today()}, commit {commit}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}, {args.rounds} rounds x {args.seconds:g} s, medians)\n\n"
              f"Load generator: wrk {wrk_version()} (C, one thread) on the same 2 cores as the ALB and the tasks "
              "(its CPU competes with them); latency from one connection, throughput from 4. Direct runs spread "
              "over both tasks. Failed requests during deploys: Python http.client threads. Backend: a minimal "
              f"ASGI app on uvicorn ({task_parser()} parser: what uvicorn picks in the task's `python`), 1 vCPU per task, "
              f"2 tasks. Tracing {args.tracing} (`--tracing`; on, the ALB records an alb and an ecs span per request). "
              f"Load average (1/5/15 min) before the run: {load_before}, after: {load_after} (the box is "
              "shared; at loads well above 2 every figure here is inflated by waiting for a core). Rerun: "
              "`python benchmarks/ecs_alb.py --out benchmarks/RESULTS.md`.\n")
    text = header + "\n" + "\n".join(table) + "\n"
    print(text)
    if args.out:
        write_section(args.out, "ecs-alb", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
