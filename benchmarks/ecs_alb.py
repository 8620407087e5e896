"""ECS emulation and the internal ALB, measured: request latency and throughput straight to a
task vs through the ALB, kill -9 of a task -> replacement serving, failed requests during a
rolling deploy under steady load.

    python benchmarks/ecs_alb.py [--seconds 5] [--out benchmarks/RESULTS.md]

Runs devenv from the working tree on a throwaway project under /tmp (a tiny ASGI service on
uvicorn behind the ALB, 2 tasks), always ending with `devenv down --volumes`. The load
generator is Python (http.client, keep-alive, one connection per thread) on the same 2
cores as everything it measures: its CPU competes with the ALB and the tasks, so the
absolute req/s figures are lower than a native generator would reach; direct and ALB runs
use the same generator back to back.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
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
from results import write_section  # noqa: E402

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
      health_check: {path: /health, interval: 0.5, timeout: 1, healthy_threshold: 2, unhealthy_threshold: 2}
"""


def devenv(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "devenv", *args, "--file", str(project / "devenv.yaml")],
                            capture_output=True, text=True, timeout=180, cwd=project)
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


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="devenv-bench-ecs-"))
    os.chmod(project, 0o755)
    (project / "svc").mkdir()
    (project / "svc" / "app.py").write_text(APP)
    (project / "devenv.yaml").write_text(STACK)
    rows = []
    try:
        devenv(project, "up")
        wait(lambda: healthy_count(project) == 2, 60, "2 healthy tasks")
        alb_port = json.loads((project / ".devenv" / "ports.json").read_text())["alb"]
        target = running(project)[0]["address"].split(":")
        hammer(target[0], int(target[1]), 1.0, 1)  # warm-up, both paths
        hammer("127.0.0.1", alb_port, 1.0, 1)
        figures = {"direct": {"p50": [], "p99": [], "rps": []}, "alb": {"p50": [], "p99": [], "rps": []}}
        for _ in range(args.rounds):  # interleaved: direct, then ALB, per round
            for name, (host, port) in (("direct", (target[0], int(target[1]))), ("alb", ("127.0.0.1", alb_port))):
                lat, n, failed = hammer(host, port, args.seconds, 1)
                figures[name]["p50"].append(pct(lat, 0.5))
                figures[name]["p99"].append(pct(lat, 0.99))
                _, n4, _ = hammer(host, port, args.seconds, 4)
                figures[name]["rps"].append(n4 / args.seconds)
        med = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in figures.items()}
        rows.append(("request p50, 1 client (ms)", f"{med['direct']['p50']:.2f}", f"{med['alb']['p50']:.2f}",
                     f"ALB adds {med['alb']['p50'] - med['direct']['p50']:.2f} ms", "<= 1 ms added"))
        rows.append(("request p99, 1 client (ms)", f"{med['direct']['p99']:.2f}", f"{med['alb']['p99']:.2f}", "", ""))
        ratio = med["alb"]["rps"] / med["direct"]["rps"]
        rows.append(("throughput, 4 clients (req/s)", f"{med['direct']['rps']:.0f}", f"{med['alb']['rps']:.0f}",
                     f"ALB keeps {100 * ratio:.0f}%", ">= 70%"))

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
        devenv(project, "down", "--volumes", check=False)
        shutil.rmtree(project, ignore_errors=True)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    table = ["| measure | direct / value | through ALB / spread | note | target |", "|---|---|---|---|---|"]
    table += [f"| {' | '.join(row)} |" for row in rows]
    header = (f"## ECS and the internal ALB ({datetime.date.today()}, commit {commit}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}, {args.rounds} rounds x {args.seconds:g} s, medians)\n\n"
              "Load generator: Python http.client threads on the same 2 cores (its CPU competes with the ALB "
              "and the tasks). Backend: a minimal ASGI app on uvicorn, 1 vCPU per task. Rerun: "
              "`python benchmarks/ecs_alb.py --out benchmarks/RESULTS.md`.\n")
    text = header + "\n" + "\n".join(table) + "\n"
    print(text)
    if args.out:
        write_section(args.out, "ecs-alb", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
