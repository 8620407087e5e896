"""What tracing costs: Nedlia's lifecycle flow with spans recorded vs with tracing off.

    python benchmarks/tracing_overhead.py [--placements 200] [--out benchmarks/RESULTS.md]

Two copies of HEAD (git archive) run side by side, one with `tracing: {enabled: true}` (the
default) and one with `tracing: {enabled: false}` in its devenv.local.yaml. Placements go to
the two stacks alternately, one at a time, the order flipped every round, after 10 warm-up
placements each, so both see the same machine load. Latency is the lifecycle flow of
benchmarks/lifecycle.py: POST /placements through API Gateway until the notification row is
in Postgres (the client polls every 2 ms, on the same 2 cores as both stacks). Target from
issue 7: tracing on adds <= 5 % at p50.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from lifecycle import devenv, lifecycle_ms, register  # noqa: E402
from results import write_section  # noqa: E402

TARGET = 5.0  # percent at p50


def copy_of_head(label: str, overlay: str) -> Path:
    """HEAD exported (git archive) into a throwaway folder, ``overlay`` added to its
    devenv.local.yaml."""
    project = Path(tempfile.mkdtemp(prefix=f"devenv-bench-{label}-"))
    os.chmod(project, 0o755)
    subprocess.run(f"git archive HEAD | tar -x -C {project}", shell=True, check=True, cwd=ROOT)
    with open(project / "devenv.local.yaml", "a") as local:
        local.write("\n" + overlay)
    return project


WARM_UP = 10  # placements per stack before the measured ones


def up_with_a_video(projects: dict[str, Path], label: str) -> dict[str, tuple]:
    """Each project up, a video registered: name -> (API URL, Postgres connection, video, env)."""
    import psycopg

    targets = {}
    for name, project in projects.items():
        devenv(project, "up")
        env = json.loads(devenv(project, "env", "--json").stdout)
        video = f"vid-{label}-{name}-{int(time.time())}"
        register(env["DEVENV_API_URL"], video)
        targets[name] = (env["DEVENV_API_URL"], psycopg.connect(env["DATABASE_URL"], autocommit=True), video, env)
    return targets


def alternate(targets: dict[str, tuple], placements: int) -> dict[str, list[float]]:
    """Lifecycle latencies (ms) per stack: placements alternating between the stacks one at a
    time, the order flipped every round, after WARM_UP placements each."""
    names = list(targets)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    for i in range(WARM_UP + placements):
        for name in (names if i % 2 == 0 else names[::-1]):
            api, conn, video, _ = targets[name]
            took = lifecycle_ms(api, conn, video, i * 1.0)
            if i >= WARM_UP:
                latencies[name].append(took)
    return latencies


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--placements", type=int, default=200, help="measured placements per stack")
    parser.add_argument("--out", type=Path, help="write the section into this file (benchmarks/RESULTS.md)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    projects = {"on": copy_of_head("trace-on", "tracing:\n  enabled: true\n"),
                "off": copy_of_head("trace-off", "tracing:\n  enabled: false\n")}
    load_start = os.getloadavg()
    started_at = time.monotonic()
    spans_written = 0
    try:
        targets = up_with_a_video(projects, "trace")
        latencies = alternate(targets, args.placements)
        for _, conn, _, _ in targets.values():
            conn.close()
        traces = projects["on"] / ".devenv" / "traces"
        spans_written = sum(sum(1 for _ in open(p)) for p in traces.glob("*.jsonl")) if traces.exists() else 0
        off_traces = projects["off"] / ".devenv" / "traces"
        off_spans = sum(sum(1 for _ in open(p)) for p in off_traces.glob("*.jsonl")) if off_traces.exists() else 0
    finally:
        for project in projects.values():
            devenv(project, "down", "--volumes", check=False)
            shutil.rmtree(project, ignore_errors=True)

    on, off = sorted(latencies["on"]), sorted(latencies["off"])
    p50_on, p50_off = statistics.median(on), statistics.median(off)
    overhead = (p50_on - p50_off) / p50_off * 100
    verdict = "meets target" if overhead <= TARGET else "MISSES target"
    per_flow = spans_written / (10 + args.placements) if spans_written else 0
    header = (f"## Tracing overhead on the lifecycle flow ({datetime.date.today()}, commit {commit}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()})\n\n"
              "Two copies of the stack side by side (tracing on / off in devenv.local.yaml), placements "
              "alternating between them one at a time (order flipped every round), after 10 warm-up "
              "placements each; POST /placements -> notification row in Postgres, the client polling every "
              "2 ms on the same cores. Rerun: `python benchmarks/tracing_overhead.py --out "
              f"benchmarks/RESULTS.md`. Run took {time.monotonic() - started_at:.0f} s; load average "
              f"{load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end.\n")
    table = ["| stack | p50 (ms) | p99 (ms) | runs | spans recorded |", "|---|---:|---:|---:|---:|",
             f"| tracing on | {p50_on:.1f} | {percentile(on, 0.99):.1f} | {len(on)} | {spans_written} "
             f"({per_flow:.1f} per flow) |",
             f"| tracing off | {p50_off:.1f} | {percentile(off, 0.99):.1f} | {len(off)} | {off_spans} |"]
    text = (header + "\n" + "\n".join(table) + "\n\n"
            f"Overhead at p50: {overhead:+.1f} % (target <= {TARGET:g} %): {verdict}.\n")
    print(text)
    if args.out:
        write_section(args.out, "tracing-overhead", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
