#!/usr/bin/env python3
"""Two commits of devenv measured in one run: the Lambda, ECS/ALB and up/down benchmarks,
each run on devenv/ exported from each commit with `git archive` (never the working
tree), in legs back to back: A B for ecs-alb, A B B A for lambda (a sub-millisecond row
cannot lean on its peer's ~50 ms invoke to gauge drift, and the box's load drifts over a
leg's minutes) and for up/down, which has no peer; the first commit swaps from one
benchmark to the next.

    python benchmarks/ab.py --before 8ad517b [--after HEAD] [--only lambda,ecs-alb,up-down]
                            [--out benchmarks/RESULTS.md]

Every leg is the benchmark script of this checkout (so both commits meet the same client
and the same load) with `--commit REV --json FILE` and shorter counts than its defaults;
the table then compares devenv's samples leg against leg: median and p99 (nearest rank),
and the change of the median. The peers measured in the same legs (ministack's warm
invoke, a request straight to a task) do not depend on devenv's commit: how far they move
between the legs is the noise of the box during the run, and the verdict uses it.
Standard library only; needs what the three scripts need (wrk for ecs-alb).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from results import write_section  # noqa: E402

# name -> (script, its arguments for one leg: shorter than its defaults, same on both legs,
# legs per commit). Legs run A B B A …, and a commit's samples are pooled over its legs.
BENCHMARKS: dict[str, tuple[str, list[str], int]] = {
    "lambda": ("lambda_vs_ministack.py", ["--invokes", "400", "--api-requests", "400", "--warmup", "50",
                                          "--sqs-messages", "30", "--cold-starts", "8", "--rounds", "3",
                                          "--seconds", "2"], 2),
    "ecs-alb": ("ecs_alb.py", ["--seconds", "3", "--rounds", "3"], 1),
    "up-down": ("run.py", ["--runs", "3", "--cold-runs", "1"], 2),  # no peer to gauge drift: ABBA
}
NOISE_FLOOR = 0.05  # a change within 5 % (or within the peers' drift, if larger) is "same"


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def higher_is_better(measure: str) -> bool:
    return "req/s" in measure


def is_peer(measure: str) -> bool:
    return "(peer, same run)" in measure


def leg(name: str, revision: str, workdir: Path, number: int) -> dict:
    script, extra, _ = BENCHMARKS[name]
    out = workdir / f"{name}-{revision}-{number}.json"
    if script == "ecs_alb.py":
        command = [sys.executable, str(HERE / script), *extra, "--commit", revision, "--json", str(out)]
    else:
        command = [sys.executable, str(HERE / script), *extra, "--source", "head", "--commit", revision,
                   "--json", str(out)]
    print(f"ab: {name} at {revision}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"ab: {name} at {revision} failed (exit {done.returncode}); its output is above")
    return json.loads(out.read_text())


def compare(before: dict, after: dict) -> tuple[list[tuple[str, ...]], float]:
    """Rows of (measure, before, after, change, verdict), and the peers' drift between legs."""
    drift = 0.0
    for measure, values in before["samples"].items():
        if is_peer(measure) and measure in after["samples"]:
            a, b = statistics.median(values), statistics.median(after["samples"][measure])
            drift = max(drift, abs(b - a) / a if a else 0.0)
    allowed = max(NOISE_FLOOR, drift)
    rows = []
    for measure, values in before["samples"].items():
        other = after["samples"].get(measure)
        if not other:
            continue
        a, b = statistics.median(values), statistics.median(other)
        change = (b - a) / a if a else 0.0
        worse = -change if higher_is_better(measure) else change
        if is_peer(measure):
            verdict = "peer: the box's drift"
        elif abs(change) <= allowed or a == b:
            verdict = "same"
        else:
            verdict = "slower" if worse > 0 else "faster"
        rows.append((measure, f"{a:.3g} (p99 {p99(values):.3g}, n={len(values)})",
                     f"{b:.3g} (p99 {p99(other):.3g}, n={len(other)})", f"{100 * change:+.1f}%", verdict))
    return rows, allowed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the earlier commit (e.g. the commit before a change)")
    parser.add_argument("--after", default="HEAD", help="the later commit (default HEAD)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated: " + ", ".join(BENCHMARKS))
    parser.add_argument("--out", type=Path, help="write the comparison as a section of this file")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    short = {}
    for revision in (args.before, args.after):
        found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "--short", f"{revision}^{{commit}}"],
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
        if not found:
            parser.error(f"{revision!r} is not a commit of this checkout")
        short[revision] = found

    when = dt.datetime.now(dt.timezone.utc)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    sections = []
    with tempfile.TemporaryDirectory(prefix="devenv-ab-") as tmp:
        for index, name in enumerate(names):
            first, second = (args.before, args.after) if index % 2 == 0 else (args.after, args.before)
            order = [(first, second), (second, first)] * BENCHMARKS[name][2]
            order = [revision for pair in order[:BENCHMARKS[name][2]] for revision in pair]
            results: dict[str, dict] = {}
            for number, revision in enumerate(order):
                pooled = results.setdefault(revision, {"samples": {}})
                for measure, values in leg(name, revision, Path(tmp), number)["samples"].items():
                    pooled["samples"].setdefault(measure, []).extend(values)
            rows, allowed = compare(results[args.before], results[args.after])
            table = [f"### {name} (legs in this order: {', '.join(short[r] for r in order)})", "",
                     f"| measure | before {short[args.before]} | after {short[args.after]} | change | verdict |",
                     "|---|---|---|---|---|", *(f"| {' | '.join(row)} |" for row in rows), "",
                     f"Verdicts allow {100 * allowed:.0f}% (the larger of {100 * NOISE_FLOOR:.0f}% and the "
                     "peers' drift between the legs).", ""]
            print("\n".join(table), flush=True)
            sections.append("\n".join(table))
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    header = (f"## Before and after: {short[args.before]} against {short[args.after]} "
              f"({when.strftime('%Y-%m-%d %H:%M UTC')}, {os.cpu_count()} cores)\n\n"
              "Each benchmark run in legs per commit, back to back, by this checkout's scripts on devenv/ "
              "exported from each commit (`python benchmarks/ab.py --before "
              f"{args.before} --after {args.after}`); medians, p99 nearest-rank. Load average before: "
              f"{load_before}, after: {load_after}.\n\n")
    text = header + "\n".join(sections)
    if args.out:
        write_section(args.out, "ab", text)
        print(f"ab: wrote the section into {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
