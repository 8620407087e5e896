"""Fargate Spot interruptions, measured: failed requests through the ALB while half of a
service's FARGATE_SPOT tasks are interrupted under steady load (target: 0), and how long
until the replacements serve.

    python benchmarks/spot.py [--rounds 3] [--out benchmarks/RESULTS.md] [--json FILE]

Runs devenv from the working tree on a throwaway project under /tmp: the minimal ASGI
service of benchmarks/ecs_alb.py, 5 tasks placed by ADR-007's strategy (FARGATE_SPOT 80,
FARGATE 20: 4 on Spot, 1 on FARGATE), a 5 s Spot warning and a 2 s deregistration delay as
Nedlia's local overlay has them. Each round: 2 Python http.client threads through the ALB
(every request's outcome counted), `interrupt` of 2 Spot tasks 1 s in, until the 2
replacements are healthy and the interrupted tasks stopped. About a minute at 3 rounds;
always ends with `devenv down --volumes`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from ecs_alb import APP, STACK as ECS_ALB_STACK, control, devenv, get_json, hammer, running, wait  # noqa: E402
from results import write_samples, write_section  # noqa: E402

TASKS = 5
# benchmarks/ecs_alb.py's stack, with ADR-007's capacity provider strategy and Nedlia's local Spot warning.
STACK = (ECS_ALB_STACK.replace("name: benchecs", "name: benchspot")
         .replace("desired_count: 2\n", f"desired_count: {TASKS}\n    capacity_provider_strategy:\n"
                  "      - {capacity_provider: FARGATE_SPOT, weight: 80}\n"
                  "      - {capacity_provider: FARGATE, weight: 20}\n")
         + "tracing: {enabled: false}\nfargate_spot: {warning: 5}\n")


def serving(project: Path) -> list[dict]:
    """The running tasks, once all of the desired count pass their target group's checks."""
    tasks = running(project)
    healthy = get_json(control(project) + "/services")["services"][0]["healthyCount"]
    return tasks if len(tasks) == TASKS and healthy == TASKS else []


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--json", type=Path, help="also write the samples here (benchmarks/ab.py reads them)")
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="devenv-bench-spot-"))
    os.chmod(project, 0o755)
    (project / "svc").mkdir()
    (project / "svc" / "app.py").write_text(APP)
    (project / "svc" / "requirements.txt").write_text("uvicorn\n")
    (project / "devenv.yaml").write_text(STACK)
    failed_total, requests_total, recoveries, base_moved = 0, 0, [], 0
    try:
        devenv(project, "up")
        alb_port = json.loads((project / ".devenv" / "ports.json").read_text())["alb"]
        for _ in range(args.rounds):
            wait(lambda: serving(project), 60, f"{TASKS} healthy tasks")
            base = {t["taskId"] for t in serving(project) if t["capacityProvider"] == "FARGATE"}
            result: dict = {}
            loader = threading.Thread(target=lambda: result.update(
                zip(("lat", "n", "failed"), hammer("127.0.0.1", alb_port, 10.0, 2))))
            loader.start()
            time.sleep(1.0)  # let the load reach steady state before the interruption
            request = urllib.request.Request(control(project) + "/services/echo/interrupt",
                                             data=json.dumps({"tasks": 2}).encode(), method="POST")
            start = time.monotonic()
            interrupted = set(json.loads(urllib.request.urlopen(request, timeout=5).read())["interrupted"])
            wait(lambda: serving(project) and not interrupted & {t["taskId"] for t in serving(project)},
                 60, "the replacements healthy")
            recoveries.append(time.monotonic() - start)
            base_moved += len(base - {t["taskId"] for t in serving(project)})
            loader.join()
            failed_total += result["failed"]
            requests_total += result["n"]
    finally:
        devenv(project, "down", "--volumes", check=False)
        shutil.rmtree(project, ignore_errors=True)

    rows = [("failed requests during a Spot interruption of half the Spot tasks", str(failed_total),
             f"of {requests_total}; {args.rounds} interruptions of 2 of 4 FARGATE_SPOT tasks, 2 clients", "0"),
            ("interruption -> replacements healthy in the target group (s)",
             f"median {statistics.median(recoveries):.2f}", f"max {max(recoveries):.2f}", "-"),
            ("base FARGATE tasks stopped by the interruptions", str(base_moved), "", "0")]
    if args.json:
        write_samples(args.json, "working tree", {
            "failed requests during a Spot interruption of half the tasks": [failed_total],
            "Spot interruption -> replacements healthy (s)": recoveries})
    table = ["| measure | value | note | target |", "|---|---|---|---|"]
    table += [f"| {' | '.join(row)} |" for row in rows]
    header = (f"## Fargate Spot interruptions ({datetime.date.today()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}, {args.rounds} rounds)\n\n"
              f"{TASKS} tasks of a minimal ASGI app by ADR-007's strategy (4 FARGATE_SPOT, 1 FARGATE), a 5 s Spot "
              "warning, 2 s deregistration delay; load: 2 Python http.client threads through the ALB. Rerun: "
              "`python benchmarks/spot.py --out benchmarks/RESULTS.md`.\n")
    text = header + "\n" + "\n".join(table) + "\n"
    print(text)
    if args.out:
        write_section(args.out, "spot", text)
    return 0 if failed_total == 0 and base_moved == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
