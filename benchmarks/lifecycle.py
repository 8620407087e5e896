"""Nedlia's lifecycle flow, measured end to end, and the e2e suite's wall time.

    python benchmarks/lifecycle.py [--placements 200] [--out benchmarks/RESULTS.md]

Runs on a throwaway copy of HEAD (git archive) so edits in the working tree do not leak in.
Lifecycle latency: POST /placements through API Gateway -> until its notification row is in
Postgres (API GW -> api Lambda -> ALB -> placement task -> EventBridge -> SQS -> validation
worker -> ALB -> validation task -> EventBridge -> SQS -> notification worker -> ALB ->
notification task), one placement at a time, after 10 warm-up placements. The client polls
Postgres every 2 ms for the row, on the same 2 cores as the stack. Suite wall time: `devenv
e2e` (on the stack's test instance) from a fresh state folder (cold) and from a stopped stack
(warm data), including `up`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from results import write_section  # noqa: E402


def devenv(project: Path, *args: str, check: bool = True, timeout: float = 600,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(project), **(env or {})}
    result = subprocess.run([sys.executable, "-m", "devenv", *args], capture_output=True, text=True,
                            timeout=timeout, cwd=project, env=env)
    if check and result.returncode:
        raise SystemExit(f"devenv {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def post(api: str, video: str, start: float) -> str:
    body = json.dumps({"video_id": video, "advertiser_id": "adv-acme", "product": "bench",
                       "start_seconds": start, "end_seconds": start + 0.5}).encode()
    request = urllib.request.Request(api + "/placements", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["id"]


def register(api: str, video: str) -> None:
    body = json.dumps({"id": video, "title": "bench", "duration_seconds": 100000}).encode()
    urllib.request.urlopen(urllib.request.Request(api + "/videos", data=body, method="POST",
                                                  headers={"Content-Type": "application/json"}),
                           timeout=30).read()


def lifecycle_ms(api: str, conn, video: str, start: float) -> float:
    """One placement: POST through API Gateway until its notification row is in Postgres."""
    started = time.perf_counter()
    placement = post(api, video, start)
    deadline = time.monotonic() + 30
    while not conn.execute("select 1 from notifications where placement_id = %s", (placement,)).fetchone():
        if time.monotonic() > deadline:
            raise SystemExit(f"placement {placement} got no notification within 30 s")
        time.sleep(0.002)  # polling interval of the measuring client
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--placements", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import psycopg

    project = Path(tempfile.mkdtemp(prefix="devenv-bench-life-"))
    os.chmod(project, 0o755)
    subprocess.run(f"git archive HEAD | tar -x -C {project}", shell=True, check=True, cwd=ROOT)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    rows = []
    try:
        devenv(project, "up")
        env = json.loads(devenv(project, "env", "--json").stdout)
        api = env["DEVENV_API_URL"]

        video = f"vid-bench-{int(time.time())}"
        register(api, video)
        latencies = []
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            for i in range(10 + args.placements):
                took = lifecycle_ms(api, conn, video, i * 1.0)
                if i >= 10:
                    latencies.append(took)
        ordered = sorted(latencies)
        rows.append(("lifecycle: POST /placements -> notification stored (ms)",
                     f"{statistics.median(ordered):.0f}", f"{ordered[int(0.99 * (len(ordered) - 1))]:.0f}",
                     str(len(ordered)), "p50 <= 250 ms"))
        devenv(project, "down")
        # `devenv e2e` runs on the stack's test instance (.devenv/instances/test/): fresh the
        # first time, then stopped with its data.
        started = time.monotonic()
        cold_run = devenv(project, "e2e", check=False)
        cold = time.monotonic() - started
        started = time.monotonic()
        suite = devenv(project, "e2e", check=False)
        warm = time.monotonic() - started
        rows.append(("e2e suite wall time incl. `up`, stopped stack with data (s)", f"{warm:.1f}", "",
                     "1" + ("" if suite.returncode == 0 else " (FAILED)"), "<= 90 s"))
        rows.append(("e2e suite wall time incl. `up`, fresh state (initdb, first deploy) (s)", f"{cold:.1f}", "",
                     "1" + ("" if cold_run.returncode == 0 else " (FAILED)"), "<= 90 s"))
    finally:
        devenv(project, "down", "--volumes", check=False)
        devenv(project, "down", "--volumes", check=False, env={"DEVENV_INSTANCE": "test"})
        shutil.rmtree(project, ignore_errors=True)

    header = (f"## Nedlia lifecycle and the e2e suite ({datetime.date.today()}, commit {commit}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()})\n\n"
              "One placement at a time through the whole architecture (devenv.yaml + devenv.local.yaml); the "
              "client polls Postgres every 2 ms on the same cores. Rerun: `python benchmarks/lifecycle.py "
              "--out benchmarks/RESULTS.md`.\n")
    table = ["| measure | p50 / value | p99 | runs | target |", "|---|---|---|---|---|"]
    table += [f"| {' | '.join(row)} |" for row in rows]
    text = header + "\n" + "\n".join(table) + "\n"
    print(text)
    if args.out:
        write_section(args.out, "lifecycle", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
