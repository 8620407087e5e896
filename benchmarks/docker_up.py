"""The Docker runtime, measured in one run beside its peers.

    python benchmarks/docker_up.py [--runs 3] [--placements 50] [--out benchmarks/RESULTS.md]

On throwaway copies of HEAD (git archive), with the images already present (built or pulled
before; image builds are not what is measured):
- infra only (Postgres, Redis, moto: the containers of compose/infra.yml): `devenv up
  --runtime docker` until every component is healthy, against `docker-compose -f
  compose/infra.yml up -d` followed by polling until every container's health check passes
  (what compose v2's `up --wait` does; Debian has only compose v1). Cold: no containers and
  no volumes (initdb included); warm: containers removed, volumes kept. Interleaved, `--runs`
  each.
- the whole Nedlia stack with `--runtime docker`: cold (fresh state and volumes) and warm.
- Nedlia's lifecycle flow (POST /placements -> notification row, one at a time, after 10
  warm-up placements; the client polls Postgres every 2 ms) on the Docker runtime and on the
  native one, back to back on the same copy.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
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

INFRA_ONLY = "name: nedlia\nregion: us-east-1\ninfra:\n  postgres: {version: '15', database: nedlia, user: nedlia}\n  redis: {}\n"


def run(argv: list[str], cwd: Path, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    if result.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def devenv(project: Path, *args: str, runtime: str = "docker", timeout: float = 900) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "devenv", *args], project, {"DEVENV_RUNTIME": runtime}, timeout)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def export_head(prefix: str) -> Path:
    project = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(project, 0o755)
    subprocess.run(f"git archive HEAD | tar -x -C {project}", shell=True, check=True, cwd=ROOT)
    return project


class Compose:
    """compose/infra.yml under docker-compose v1, on the ports devenv chose (so both use the same)."""

    def __init__(self, project: Path, ports: dict[str, int]):
        self.project = project
        self.env = {"DEVENV_POSTGRES_PORT": str(ports["postgres"]), "DEVENV_REDIS_PORT": str(ports["redis"]),
                    "DEVENV_EMULATOR_PORT": str(ports["emulator"])}
        self.argv = ["docker-compose", "-f", str(project / "compose" / "infra.yml"), "-p", "devenvbench"]

    def up_until_healthy(self) -> None:
        run(self.argv + ["up", "-d"], self.project, self.env)
        ids = run(self.argv + ["ps", "-q"], self.project, self.env).stdout.split()
        deadline = time.monotonic() + 300
        while True:
            states = run(["docker", "inspect", "--format", "{{.State.Health.Status}}", *ids], self.project).stdout.split()
            if states and all(s == "healthy" for s in states):
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"compose services not healthy within 300 s: {states}")
            time.sleep(0.05)  # polling interval, as compose's --wait polls

    def down(self, volumes: bool) -> None:
        run(self.argv + ["down"] + (["-v"] if volumes else []), self.project, self.env)


def lifecycle(project: Path, runtime: str, placements: int) -> list[float]:
    import psycopg

    devenv(project, "up", "--timeout", "900", runtime=runtime)
    env = json.loads(devenv(project, "env", "--json", runtime=runtime).stdout)
    api = env["DEVENV_API_URL"]

    def call(path: str, body: dict) -> dict:
        request = urllib.request.Request(api + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    video = f"vid-bench-{runtime}-{int(time.time())}"
    call("/videos", {"id": video, "title": "bench", "duration_seconds": 100000})
    latencies = []
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        for i in range(10 + placements):
            started = time.perf_counter()
            placement = call("/placements", {"video_id": video, "advertiser_id": "adv-acme", "product": "bench",
                                             "start_seconds": i * 1.0, "end_seconds": i + 0.5})["id"]
            deadline = time.monotonic() + 30
            while not conn.execute("select 1 from notifications where placement_id = %s", (placement,)).fetchone():
                if time.monotonic() > deadline:
                    raise SystemExit(f"{runtime}: placement {placement} got no notification within 30 s")
                time.sleep(0.002)  # polling interval of the measuring client
            if i >= 10:
                latencies.append((time.perf_counter() - started) * 1000)
    devenv(project, "down", "--volumes", runtime=runtime)
    return sorted(latencies)


def row(label: str, values: list[float], unit: str, peer: str = "") -> str:
    """p50 and p99 (nearest rank: the maximum below 100 runs); each value when there are few."""
    ordered = sorted(values)
    fmt = (lambda v: f"{v:.1f}") if unit == "s" else (lambda v: f"{v:.0f}")
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    runs = f"{len(ordered)}" + (f" ({', '.join(fmt(v) for v in values)})" if len(values) <= 5 else "")
    return f"| {label} ({unit}) | {fmt(statistics.median(ordered))} | {fmt(p99)} | {runs} | {peer} |"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--placements", type=int, default=50)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    engine = run(["docker", "version", "--format", "{{.Server.Version}}"], ROOT).stdout.strip()
    rows: list[str] = []

    infra = export_head("devenv-bench-dinfra-")
    (infra / "devenv.yaml").write_text(INFRA_ONLY)
    (infra / "devenv.local.yaml").unlink(missing_ok=True)
    full = export_head("devenv-bench-dfull-")
    compose = None
    try:
        devenv(infra, "up")  # the ports compose will use too
        ports = json.loads((infra / ".devenv" / "ports.json").read_text())
        compose = Compose(infra, ports)
        times: dict[str, list[float]] = {k: [] for k in ("dc", "dw", "cc", "cw")}
        for _ in range(args.runs):  # interleaved: devenv cold, devenv warm, compose cold, compose warm
            devenv(infra, "down", "--volumes")
            times["dc"].append(timed(lambda: devenv(infra, "up")))  # also writes the secrets compose mounts
            devenv(infra, "down")
            times["dw"].append(timed(lambda: devenv(infra, "up")))
            devenv(infra, "down")
            compose.down(volumes=True)
            times["cc"].append(timed(compose.up_until_healthy))
            compose.down(volumes=False)
            times["cw"].append(timed(compose.up_until_healthy))
            compose.down(volumes=False)
        compose.down(volumes=True)
        rows.append(row("infra up to all healthy, cold: `devenv up --runtime docker`", times["dc"], "s",
                        f"compose {statistics.median(times['cc']):.1f} s"))
        rows.append(row("infra up to all healthy, cold: `docker-compose up -d` + health wait", times["cc"], "s"))
        rows.append(row("infra up to all healthy, warm (volumes kept): `devenv up --runtime docker`", times["dw"], "s",
                        f"compose {statistics.median(times['cw']):.1f} s"))
        rows.append(row("infra up to all healthy, warm (volumes kept): `docker-compose up -d` + health wait",
                        times["cw"], "s"))
        devenv(infra, "down", "--volumes")

        cold, warm, down = [], [], []
        for _ in range(2):
            devenv(full, "down", "--volumes")
            cold.append(timed(lambda: devenv(full, "up", "--timeout", "900")))
            down.append(timed(lambda: devenv(full, "down")))
            warm.append(timed(lambda: devenv(full, "up", "--timeout", "900")))
            devenv(full, "down")
        rows.append(row("whole Nedlia stack `devenv up --runtime docker`, cold (fresh state, images present)", cold, "s"))
        rows.append(row("whole Nedlia stack `devenv up --runtime docker`, warm (volumes kept)", warm, "s"))
        rows.append(row("whole Nedlia stack `devenv down`, docker", down, "s"))
        devenv(full, "down", "--volumes")

        docker_ms = lifecycle(full, "docker", args.placements)
        native_ms = lifecycle(full, "native", args.placements)
        rows.append(row("lifecycle POST /placements -> notification stored, docker runtime", docker_ms, "ms",
                        f"native p50 {statistics.median(native_ms):.0f} ms"))
        rows.append(row("lifecycle POST /placements -> notification stored, native runtime", native_ms, "ms"))
    finally:
        if compose is not None:
            try:
                compose.down(volumes=True)
            except SystemExit:
                pass
        for project, runtime in ((infra, "docker"), (full, "docker"), (full, "native")):
            subprocess.run([sys.executable, "-m", "devenv", "down", "--volumes"], cwd=project, capture_output=True,
                           env={**os.environ, "DEVENV_RUNTIME": runtime})
        shutil.rmtree(infra, ignore_errors=True)
        shutil.rmtree(full, ignore_errors=True)

    header = (f"## Docker runtime beside compose and the native runtime ({datetime.date.today()}, commit {commit}, "
              f"{os.cpu_count()} cores shared, Python {platform.python_version()}, Docker engine {engine}, "
              "docker-compose 1.29)\n\n"
              "Images present beforehand (local stand-ins here: no registry). Up times are wall clock of the "
              "command until every component is healthy; compose's is `up -d` plus polling `docker inspect` every "
              "50 ms until every health check passes. Lifecycle: one placement at a time, the client polls Postgres "
              "every 2 ms on the same cores. Rerun: `python benchmarks/docker_up.py --out benchmarks/RESULTS.md`.\n")
    table = ["| measure | p50 | p99 (nearest rank: the max below 100 runs) | runs (values, in order) | peer |",
             "|---|---|---|---|---|", *rows]
    text = header + "\n" + "\n".join(table) + "\n"
    print(text)
    if args.out:
        write_section(args.out, "docker-runtime", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
