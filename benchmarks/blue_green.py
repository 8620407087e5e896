"""CodeDeploy blue/green, measured: failed requests through the ALB during a canary deployment
and during its automatic rollback, under steady load (target: 0 each), and how long each takes.

    python benchmarks/blue_green.py [--rounds 2] [--out benchmarks/RESULTS.md] [--json FILE]

Runs devenv from the working tree on a throwaway project under /tmp: the minimal ASGI service
of benchmarks/ecs_alb.py (2 tasks) as a CODE_DEPLOY service, CodeDeployDefault.ECSCanary10Percent5Minutes
at time_scale 0.01 (10 % on green, the rest 3 s later), a BeforeAllowTraffic hook (a Lambda
function reporting with PutLifecycleEventHookExecutionStatus) that vetoes while a gate file
exists, a 2 s deregistration delay. Each round: 2 Python http.client threads through the ALB
(every request's outcome counted) while a deployment with the gate open completes, then while
one with the gate closed rolls back. About a minute at 2 rounds; always ends with `devenv
down --volumes`.
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
from ecs_alb import APP, STACK as ECS_ALB_STACK, control, devenv, get_json, hammer, wait  # noqa: E402
from results import write_samples, write_section  # noqa: E402

HOOK = '''
import os

import boto3


def handler(event, context):
    closed = os.path.exists(os.environ["GATE_FILE"])
    boto3.client("codedeploy").put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"], lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status="Failed" if closed else "Succeeded")
'''
LOAD_SECONDS = 15.0  # each deployment's load; a deployment takes ~6-8 s here


def stack(gate: Path) -> str:
    """benchmarks/ecs_alb.py's stack with its service deployed by CodeDeploy and a gate hook."""
    return (ECS_ALB_STACK.replace("name: benchecs", "name: benchbg")
            .replace("    deployment: {minimum_healthy_percent: 100, maximum_percent: 200}\n",
                     "    deployment_controller: CODE_DEPLOY\n"
                     "    blue_green:\n"
                     "      deployment_config: CodeDeployDefault.ECSCanary10Percent5Minutes\n"
                     "      time_scale: 0.01\n"
                     "      hooks: {BeforeAllowTraffic: gate}\n")
            + "tracing: {enabled: false}\n"
            + f"functions:\n  gate:\n    handler: handlers.handler\n    code: hooks\n    timeout: 10\n"
              f"    environment: {{GATE_FILE: \"{gate}\"}}\n")


def service(project: Path) -> dict:
    return get_json(control(project) + "/services")["services"][0]


def serving(project: Path) -> bool:
    view = service(project)
    return view["healthyCount"] == 2 and view["runningCount"] == 2


def deploy_under_load(project: Path, alb_port: int) -> tuple[str, int, int, float]:
    """One blue/green deployment while 2 threads load the ALB: (its final status, requests,
    failed requests, seconds from start to its end)."""
    wait(lambda: serving(project), 60, "2 healthy tasks")
    result: dict = {}
    loader = threading.Thread(target=lambda: result.update(
        zip(("lat", "n", "failed"), hammer("127.0.0.1", alb_port, LOAD_SECONDS, 2))))
    loader.start()
    time.sleep(1.0)  # let the load reach steady state before the deployment
    request = urllib.request.Request(control(project) + "/services/echo/deploy", data=b"{}", method="POST")
    start = time.monotonic()
    deployment_id = json.loads(urllib.request.urlopen(request, timeout=30).read())["codeDeploy"]["deploymentId"]

    def ended() -> bool:
        state = service(project)["blueGreen"]["deployment"]
        return state["id"] == deployment_id and state["status"] in ("Succeeded", "Failed")

    wait(ended, LOAD_SECONDS - 2, "the deployment ended while the load runs")
    took = time.monotonic() - start
    loader.join()
    return service(project)["blueGreen"]["deployment"]["status"], result["n"], result["failed"], took


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--json", type=Path, help="also write the samples here (benchmarks/ab.py reads them)")
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="devenv-bench-bg-"))
    os.chmod(project, 0o755)
    gate = project / "gate-closed"
    (project / "svc").mkdir()
    (project / "svc" / "app.py").write_text(APP)
    (project / "svc" / "requirements.txt").write_text("uvicorn\n")
    (project / "hooks").mkdir()
    (project / "hooks" / "handlers.py").write_text(HOOK)
    (project / "devenv.yaml").write_text(stack(gate))
    outcomes: dict[str, list] = {"canary": [], "rollback": []}
    try:
        devenv(project, "up")
        alb_port = json.loads((project / ".devenv" / "ports.json").read_text())["alb"]
        for _ in range(args.rounds):
            gate.unlink(missing_ok=True)
            outcomes["canary"].append(deploy_under_load(project, alb_port))
            gate.write_text("closed\n")
            outcomes["rollback"].append(deploy_under_load(project, alb_port))
    finally:
        devenv(project, "down", "--volumes", check=False)
        shutil.rmtree(project, ignore_errors=True)

    def total(kind: str, index: int) -> int:
        return sum(outcome[index] for outcome in outcomes[kind])

    expected = {"canary": "Succeeded", "rollback": "Failed"}
    wrong = [kind for kind, runs in outcomes.items() for run in runs if run[0] != expected[kind]]
    rows = [("failed requests during a canary blue/green", str(total("canary", 2)),
             f"of {total('canary', 1)}; {args.rounds} canaries (10 %, then all 3 s later), 2 clients", "0"),
            ("failed requests during its automatic rollback", str(total("rollback", 2)),
             f"of {total('rollback', 1)}; {args.rounds} deployments vetoed by their BeforeAllowTraffic hook", "0"),
            ("deploy -> canary complete (s)", f"median {statistics.median(r[3] for r in outcomes['canary']):.2f}",
             f"max {max(r[3] for r in outcomes['canary']):.2f}", "-"),
            ("deploy -> rolled back (s)", f"median {statistics.median(r[3] for r in outcomes['rollback']):.2f}",
             f"max {max(r[3] for r in outcomes['rollback']):.2f}", "-")]
    if args.json:
        write_samples(args.json, "working tree", {
            "failed requests during a canary blue/green": [r[2] for r in outcomes["canary"]],
            "failed requests during a blue/green rollback": [r[2] for r in outcomes["rollback"]]})
    table = ["| measure | value | note | target |", "|---|---|---|---|"]
    table += [f"| {' | '.join(row)} |" for row in rows]
    header = (f"## CodeDeploy blue/green ({datetime.date.today()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}, {args.rounds} rounds)\n\n"
              "2 tasks of a minimal ASGI app deployed by CodeDeploy (CodeDeployDefault.ECSCanary10Percent5Minutes at "
              "time_scale 0.01), a BeforeAllowTraffic hook Lambda that passes, then vetoes; 2 s deregistration delay; "
              "load: 2 Python http.client threads through the ALB. Rerun: "
              "`python benchmarks/blue_green.py --out benchmarks/RESULTS.md`.\n")
    text = header + "\n" + "\n".join(table) + "\n"
    if wrong:
        text += f"\nUnexpected outcomes: {wrong}\n"
    print(text)
    if args.out:
        write_section(args.out, "blue-green", text)
    return 0 if not wrong and total("canary", 2) == 0 and total("rollback", 2) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
