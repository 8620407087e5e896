#!/usr/bin/env python3
"""What a newcomer and a returning engineer wait for, with hermetic environments:

    python benchmarks/environments.py [--runs N] [--clone-runs N] [--build-runs N] [--out benchmarks/RESULTS.md]

1. Fresh clone -> all healthy: `git clone` of HEAD into /tmp, then the README's `make up` in a
   scrubbed environment (`env -i HOME=... PATH=/usr/local/bin:/usr/bin:/bin`: no virtualenv,
   a `python3` without the project's packages), package caches (pip, uv) warm, function and
   service environments NOT built (an empty DEVENV_ENV_DIR). Timed to `make up`'s exit, which
   is after every component and service is healthy.
2. Environment build of the Nedlia stack alone (`devenv build`, empty DEVENV_ENV_DIR): with an
   empty uv cache (downloads from the index) and with the warm one.
3. Warm `devenv up` of the whole Nedlia stack (devenv.yaml + devenv.local.yaml: functions,
   API, services, ALB; environments built, data kept, stack down) -> all healthy, and
   `devenv down`.

Every clone, state folder and environment folder is under /tmp and removed at the end
(`devenv down --volumes` first). Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from results import write_section  # noqa: E402

SCRUBBED_PATH = "/usr/local/bin:/usr/bin:/bin"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def scrubbed(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": SCRUBBED_PATH, "LANG": "C.UTF-8"}
    env.update(extra or {})
    return env


def timed(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode} in {cwd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return took


def clone(into: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(REPO), str(into)], check=True)
    return into


def median(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.99 + 0.999999) - 1)]


def fresh_clone_runs(runs: int, work: Path) -> list[float]:
    times = []
    for index in range(runs):
        root = clone(work / f"clone-{index}")
        envs = work / f"envs-clone-{index}"
        env = scrubbed({"DEVENV_ENV_DIR": str(envs)})
        try:
            say(f"fresh clone {index + 1}/{runs}: make up")
            times.append(timed(["make", "up"], cwd=root, env=env))
            say(f"  {times[-1]:.1f} s")
        finally:
            subprocess.run([str(root / ".venv/bin/devenv"), "down", "--volumes"], cwd=root, env=env,
                           capture_output=True, timeout=120)
    return times


def build_runs(runs: int, devenv: str, project: Path, work: Path) -> tuple[list[float], list[float]]:
    cold, warm = [], []
    for index in range(runs):
        for kind, bucket in (("cold", cold), ("warm", warm)):
            extra = {"DEVENV_ENV_DIR": str(work / f"envs-{kind}-{index}")}
            if kind == "cold":
                extra["UV_CACHE_DIR"] = str(work / f"uv-cache-{index}")
            bucket.append(timed([devenv, "build", "--file", str(project / "devenv.yaml")], cwd=project,
                                env=scrubbed(extra)))
            say(f"build {kind} {index + 1}/{runs}: {bucket[-1]:.1f} s")
    return cold, warm


def warm_up_runs(runs: int, devenv: str, project: Path) -> tuple[list[float], list[float]]:
    env = scrubbed()
    file = ["--file", str(project / "devenv.yaml")]
    timed([devenv, "up", *file], cwd=project, env=env)  # warm-up: builds, initdb, first deploy
    timed([devenv, "down", *file], cwd=project, env=env)
    ups, downs = [], []
    for index in range(runs):
        ups.append(timed([devenv, "up", *file], cwd=project, env=env))
        downs.append(timed([devenv, "down", *file], cwd=project, env=env))
        say(f"warm up {index + 1}/{runs}: up {ups[-1]:.2f} s, down {downs[-1]:.2f} s")
    return ups, downs


def row(label: str, values: list[float], target: str = "—") -> str:
    return f"| {label} | {median(values):.2f} s | {p99(values):.2f} s | {len(values)} | {target} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="warm up/down rounds")
    parser.add_argument("--clone-runs", type=int, default=2)
    parser.add_argument("--build-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.monotonic()
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="devenv-bench-envs-"))
    os.chmod(work, 0o755)  # Postgres runs as an unprivileged user under root and must reach its data
    try:
        clones = fresh_clone_runs(args.clone_runs, work)
        # One clone (with its .venv from make up) serves the other rows.
        project = clone(work / "project")
        env = scrubbed({"DEVENV_ENV_DIR": str(work / "envs-setup")})
        timed(["make", "setup"], cwd=project, env=env)
        devenv = str(project / ".venv/bin/devenv")
        cold, warm = build_runs(args.build_runs, devenv, project, work)
        ups, downs = warm_up_runs(args.runs, devenv, project)
        subprocess.run([devenv, "down", "--volumes", "--file", str(project / "devenv.yaml")], cwd=project,
                       env=scrubbed(), capture_output=True, timeout=120)
    finally:
        for folder in work.glob("clone-*"):
            subprocess.run([str(folder / ".venv/bin/devenv"), "down", "--volumes"], cwd=folder,
                           capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    load_end = os.getloadavg()
    text = "\n".join([
        f"## Environments, fresh clone and the whole stack's warm up ({dt.datetime.utcnow():%Y-%m-%d %H:%M} UTC, "
        f"commit {commit}, {os.cpu_count()} cores)",
        "",
        f"- Load average (1/5/15 min): start {' '.join(f'{v:.2f}' for v in load_start)}; "
        f"end {' '.join(f'{v:.2f}' for v in load_end)} (a shared 2-core box; the run took "
        f"{(time.monotonic() - started) / 60:.1f} min)",
        "- Every command runs in a scrubbed environment: `env -i HOME PATH=/usr/local/bin:/usr/bin:/bin` "
        "(no virtualenv; `python3` is the system's, without the project's packages), as a newcomer's shell.",
        "- `make up` and `devenv build` run with an empty DEVENV_ENV_DIR (environments not built); pip's "
        "and uv's caches warm unless the row says cold.",
        "",
        "| measure | median | p99 | runs | target |",
        "| --- | ---: | ---: | ---: | --- |",
        row("fresh clone → `make up` → all healthy (venv + packages, environments, whole Nedlia stack)", clones,
            "<= 60 s"),
        row("`devenv build` of the Nedlia stack's environments, uv cache cold (downloads)", cold),
        row("`devenv build` of the Nedlia stack's environments, uv cache warm", warm),
        row("`devenv up` warm, whole Nedlia stack (devenv.yaml + devenv.local.yaml) → all healthy", ups, "<= 3 s"),
        row("`devenv down`, whole Nedlia stack", downs),
        "",
        "p99 is nearest-rank (the maximum with fewer than 100 runs). Rerun: "
        "`python benchmarks/environments.py --out benchmarks/RESULTS.md`.",
    ])
    print(text)
    if args.out:
        write_section(args.out, "environments", text)


if __name__ == "__main__":
    main()
