"""Chaos: placements driven through Nedlia's public API at a steady rate while processes are
killed at random, then what became of every acknowledged one.

    python benchmarks/chaos.py [--placements 1000] [--rate 15] [--seed N]
        [--kills task=8,worker=8,emulator=1,redis=1,postgres=1,supervisor=1]
        [--file devenv.yaml] [--instance test] [--out benchmarks/RESULTS.md]

Runs against the stack of ``--file`` (``--instance test``: the tests' instance), bringing it up
if it is not running; on ``runtime: docker`` the infra and the Lambda instances are
containers, killed through their init's host pid (the container ends as in a crash). Kinds of kill, each ``kill -9`` at a random moment of
the drive: ``task`` (a running ECS task of any service), ``worker`` (a validation-worker or
notification-worker Lambda instance), ``emulator``, ``redis``, ``postgres`` (the postmaster;
the supervisor restarts each) and ``supervisor`` (its children die with it; then ``devenv
up``, as a developer would). Each request is a POST /placements with its own Idempotency-Key,
not retried. After the drive it waits until every accepted placement is decided with a
notification and the work queues are empty (or nothing moves for ``--quiet`` seconds), then
reports: accepted, failed requests (by reason), lost (accepted, never finished: no row, or no
decision, or no notification), stuck (still pending), duplicate notifications, messages
dead-lettered, drain time, and the stack's health at the end. A shorter run is part of the
e2e suite (tests/e2e/test_chaos.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

KINDS = ("task", "worker", "emulator", "redis", "postgres", "supervisor")
WORKERS = ("validation-worker", "notification-worker")
WORK_QUEUES = ("nedlia-validation", "nedlia-notification")
DLQS = ("nedlia-validation-dlq", "nedlia-notification-dlq")
DEFAULT_KILLS = "task=8,worker=8,emulator=1,redis=1,postgres=1,supervisor=1"


# ---------------------------------------------------------------- the plan (pure)


def parse_kills(text: str) -> dict[str, int]:
    """``task=8,postgres=1`` -> {"task": 8, "postgres": 1}; a clear ValueError otherwise."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, number = part.partition("=")
        if kind not in KINDS:
            raise ValueError(f"--kills: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
        if not number.isdigit():
            raise ValueError(f"--kills: {part!r} needs a count, e.g. {kind}=2")
        counts[kind] = int(number)
    return counts


@dataclass(frozen=True)
class Kill:
    at: float  # seconds after the drive started
    kind: str


def plan_kills(counts: dict[str, int], duration: float, rng: random.Random) -> list[Kill]:
    """Each kill at a random moment between 10 % and 70 % of the drive (so the stack is
    loaded before and after it), in time order; the supervisor's between 70 % and 85 %,
    after the others, since the `devenv up` that follows it takes longer than a short drive."""
    kills = [Kill(round(rng.uniform(*((0.70, 0.85) if kind == "supervisor" else (0.10, 0.70))) * duration, 2), kind)
             for kind, count in counts.items() for _ in range(count)]
    return sorted(kills, key=lambda k: k.at)


# ---------------------------------------------------------------- the outcome


@dataclass
class Outcome:
    requested: int = 0
    accepted: list[str] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)  # reason -> count
    lost: list[str] = field(default_factory=list)  # accepted, never finished
    missing: list[str] = field(default_factory=list)  # accepted, no row at all (part of lost)
    stuck: list[str] = field(default_factory=list)  # still pending at the end (part of lost)
    duplicates: int = 0  # notifications beyond the first, over all accepted placements
    dead_lettered: int = 0
    drive_seconds: float = 0.0
    drain_seconds: float | None = None  # None: never drained
    healthy: bool = False
    health: list[str] = field(default_factory=list)  # what was not healthy
    kills: list[str] = field(default_factory=list)  # "12.3 s postgres pid 123" or why it could not

    def rows(self) -> list[tuple[str, str]]:
        failed = sum(self.failures.values())
        return [
            ("placements requested", str(self.requested)),
            ("accepted (201/200)", str(len(self.accepted))),
            ("failed requests", str(failed) + (" (" + "; ".join(f"{n}x {why}" for why, n in
                                                               self.failures.most_common(5)) + ")" if failed else "")),
            ("lost (accepted, never finished)", f"{len(self.lost)}"
             + (f" (no row: {len(self.missing)}, pending: {len(self.stuck)})" if self.lost else "")),
            ("stuck (pending at the end)", str(len(self.stuck))),
            ("duplicate notifications", str(self.duplicates)),
            ("dead-lettered messages", str(self.dead_lettered)),
            ("drive", f"{self.drive_seconds:.1f} s"),
            ("drain (after the last request)", "never" if self.drain_seconds is None else f"{self.drain_seconds:.1f} s"),
            ("stack healthy at the end (within 90 s)", "yes" if self.healthy else "no: " + "; ".join(self.health)),
            ("kills", str(len(self.kills))),
        ]

    def table(self) -> str:
        lines = ["| measure | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in self.rows()]
        return "\n".join(lines)


# ---------------------------------------------------------------- processes


def _parents() -> dict[int, int]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    found[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return found


def descendants(root: int) -> list[int]:
    parents = _parents()
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found.extend(children)
        frontier.extend(children)
    return found


def function_of(pid: int) -> str | None:
    """The Lambda function a process runs (its AWS_LAMBDA_FUNCTION_NAME), if any."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            for item in handle.read().split(b"\0"):
                if item.startswith(b"AWS_LAMBDA_FUNCTION_NAME="):
                    return item.split(b"=", 1)[1].decode()
    except OSError:
        return None
    return None


# ---------------------------------------------------------------- the run


class Chaos:
    """One chaos run against ``stack`` (a devenv Stack that is running)."""

    def __init__(self, stack, *, placements: int, rate: float, kills: dict[str, int], seed: int | None = None,
                 quiet: float = 60.0, drain_timeout: float = 300.0, up_argv: list[str] | None = None,
                 log=lambda line: print(line, file=sys.stderr, flush=True)):
        self.stack = stack
        self.placements = placements
        self.rate = rate
        self.rng = random.Random(seed)
        self.plan = plan_kills(kills, placements / rate, self.rng)
        self.quiet = quiet
        self.drain_timeout = drain_timeout
        self.up_argv = up_argv or [sys.executable, "-m", "devenv", "up", "--file", str(stack.project.files[0])]
        self.log = log
        self.outcome = Outcome()
        self._lock = threading.Lock()
        env = stack.environment()
        self.api, self.database_url = env["DEVENV_API_URL"], env["DATABASE_URL"]
        self.aws_env = env

    # -- driving

    def _post(self, video: str, index: int) -> None:
        body = json.dumps({"video_id": video, "advertiser_id": "adv-acme", "product": "chaos",
                           "start_seconds": index, "end_seconds": index + 0.5}).encode()
        request = urllib.request.Request(self.api + "/placements", data=body, method="POST", headers={
            "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                placement = json.loads(response.read())["id"]
            with self._lock:
                self.outcome.accepted.append(placement)
            return
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", "")
            except ValueError:
                message = ""
            why = f"HTTP {exc.code} {message}".strip()
        except Exception as exc:  # noqa: BLE001 - every kind of failure is counted by its kind
            why = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        with self._lock:
            self.outcome.failures[" ".join(why.split())[:80]] += 1  # one line: it goes in a table

    def _register_video(self) -> str:
        video = f"vid-chaos-{uuid.uuid4().hex[:8]}"
        body = json.dumps({"id": video, "title": "chaos", "duration_seconds": 10 ** 7}).encode()
        request = urllib.request.Request(self.api + "/videos", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).read()
        return video

    def _drive(self, video: str) -> None:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="chaos-client") as pool:
            for index in range(self.placements):
                delay = started + index / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing of the load generator
                pool.submit(self._post, video, index)
                self.outcome.requested += 1
        self.outcome.drive_seconds = time.monotonic() - started

    # -- killing

    def _victim(self, kind: str) -> tuple[int, str] | None:
        status = self.stack.status()
        record = status.record
        if record is None:
            return None
        if kind == "supervisor":
            return record.supervisor_pid, "supervisor"
        if kind in ("emulator", "redis", "postgres"):
            component = record.component(kind)
            if component and component.pid:
                return component.pid, kind
            containers = self._containers(kind)  # runtime: docker
            return (containers[0][0], kind) if containers else None
        if kind == "task":
            running = [t for t in self.stack.ecs(record).tasks(stopped=False)
                       if t.get("lastStatus") == "RUNNING" and t.get("pid")]
            if not running:
                return None
            task = self.rng.choice(running)
            return task["pid"], f"task {task['service']} {task['taskId'][:8]}"
        instances = [(pid, name) for pid in descendants(record.supervisor_pid)
                     if (name := function_of(pid)) in WORKERS]
        instances += [(pid, name) for pid, name in self._containers(None, **{"devenv.role": "lambda"})
                      if name in WORKERS]
        # The runtime's first process per instance: skip a child of another instance's process.
        pids = {pid for pid, _ in instances}
        parents = _parents()
        roots = [(pid, name) for pid, name in instances if parents.get(pid) not in pids]
        if not roots:
            return None
        pid, name = self.rng.choice(roots)
        return pid, f"worker {name}"

    def _containers(self, component: str | None, **labels: str) -> list[tuple[int, str]]:
        """With ``runtime: docker``: the host pid of each running container of the stack with
        ``component`` / ``labels`` (its init: killing it ends the container, as a crash
        would), and its function's or component's name; [] on the native runtime."""
        project = self.stack.project
        if project.config.runtime != "docker":
            return []
        from devenv.runtime.docker import DockerEngine, stack_key

        engine = DockerEngine(stack_key(project.config.name, project.root, project.instance))
        found = []
        for container in engine.containers(component, all=False, **labels):
            pid = (container.attrs.get("State") or {}).get("Pid")
            if pid:
                found.append((pid, container.labels.get("devenv.function") or component or ""))
        return found

    def _kill(self, kind: str, at: float) -> None:
        try:
            victim = self._victim(kind)
        except Exception as exc:  # noqa: BLE001 - the stack may be half down right now
            victim, why = None, f"{type(exc).__name__}: {exc}"
        else:
            why = "nothing to kill"
        if victim is None:
            self.outcome.kills.append(f"{at:.1f} s {kind}: not done ({why})")
            return
        pid, what = victim
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            self.outcome.kills.append(f"{at:.1f} s {what}: pid {pid} already gone")
            return
        self.outcome.kills.append(f"{at:.1f} s {what} (pid {pid})")
        self.log(f"chaos: killed {what} (pid {pid}) at {at:.1f} s")
        if kind == "supervisor":
            result = subprocess.run(self.up_argv, capture_output=True, text=True, timeout=300, cwd=self.stack.project.root,
                                    env={**os.environ, **({"DEVENV_INSTANCE": self.stack.project.instance}
                                                          if self.stack.project.instance else {})})
            self.outcome.kills[-1] += f", then devenv up: exit {result.returncode}"
            self.log(f"chaos: devenv up after the supervisor kill exited {result.returncode}")

    def _killer(self, started: float, done: threading.Event) -> None:
        for index, kill in enumerate(self.plan):
            if done.wait(max(0.0, started + kill.at - time.monotonic())):
                self.outcome.kills += [f"{k.at:.1f} s {k.kind}: not done (the drive was over)"
                                       for k in self.plan[index:]]
                return
            self._kill(kill.kind, kill.at)

    # -- counting

    def _aws(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.aws_env["AWS_ENDPOINT_URL"],
                            region_name=self.aws_env["AWS_REGION"], aws_access_key_id="test",
                            aws_secret_access_key="test")

    def _depths(self, names) -> dict[str, int]:
        sqs = self._aws("sqs")
        depths = {}
        for name in names:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            depths[name] = sum(int(v) for v in attributes.values())
        return depths

    def _states(self) -> dict[str, tuple[str, int]]:
        """placement id -> (status, notifications) for the accepted placements that exist."""
        import psycopg

        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT p.id::text, p.status, count(n.id) FROM placements p LEFT JOIN notifications n "
                "ON n.placement_id = p.id WHERE p.id = ANY(%s::uuid[]) GROUP BY p.id",
                (self.outcome.accepted,)).fetchall()
        return {pid: (status, count) for pid, status, count in rows}

    def _drain(self, drive_end: float) -> dict[str, tuple[str, int]]:
        """Waits until every accepted placement is decided with a notification and the work
        queues are empty; gives up after ``quiet`` seconds without progress."""
        states: dict[str, tuple[str, int]] = {}
        last_change, previous = time.monotonic(), None
        while time.monotonic() - drive_end < self.drain_timeout:
            try:
                states = self._states()
                finished = sum(1 for s, n in states.values() if s != "pending" and n >= 1)
                queued = sum(self._depths(WORK_QUEUES).values())
            except Exception as exc:  # noqa: BLE001 - Postgres or the emulator restarting: ask again
                self.log(f"chaos: drain check failed ({type(exc).__name__}); retrying")
                time.sleep(1.0)  # retry interval of a condition poll with a deadline
                continue
            if finished == len(self.outcome.accepted) and queued == 0:
                self.outcome.drain_seconds = time.monotonic() - drive_end
                return states
            if (finished, queued) != previous:
                previous, last_change = (finished, queued), time.monotonic()
            elif time.monotonic() - last_change > self.quiet:
                break
            time.sleep(0.5)  # poll interval of a condition wait with a deadline
        return states

    def _health(self, settle: float = 90.0) -> None:
        """Healthy: every component ready and every ECS service at its desired healthy count,
        within ``settle`` seconds of the drain (a task killed late is still being replaced)."""
        deadline = time.monotonic() + settle
        while True:
            problems = self._problems()
            if not problems or time.monotonic() >= deadline:
                break
            time.sleep(1.0)  # poll interval of a condition wait with a deadline
        self.outcome.health, self.outcome.healthy = problems, not problems

    def _problems(self) -> list[str]:
        from devenv.runtime.record import ComponentState

        problems = []
        record = self.stack.status().record
        if record is None:
            problems.append("not running")
        else:
            problems += [f"{c.name} {c.state.value}" for c in record.components if c.state is not ComponentState.READY]
            try:
                for service in self.stack.ecs(record).services():
                    if service["healthyCount"] < service["desiredCount"]:
                        problems.append(f"{service['serviceName']} {service['healthyCount']}/"
                                        f"{service['desiredCount']} healthy")
            except Exception as exc:  # noqa: BLE001 - an unreachable ECS control API is unhealthy too
                problems.append(f"ECS control API: {type(exc).__name__}")
        return problems

    def run(self) -> Outcome:
        video = self._register_video()
        dlq_before = sum(self._depths(DLQS).values())
        self.log(f"chaos: {self.placements} placements at {self.rate:g}/s on {video}; kills: "
                 + ", ".join(f"{k.kind}@{k.at:g}s" for k in self.plan))
        done = threading.Event()
        killer = threading.Thread(target=self._killer, args=(time.monotonic(), done), daemon=True)
        killer.start()
        self._drive(video)
        done.set()
        killer.join(timeout=600)
        drive_end = time.monotonic()
        states = self._drain(drive_end)
        outcome = self.outcome
        for placement in outcome.accepted:
            status, count = states.get(placement, (None, 0))
            if status is None:
                outcome.missing.append(placement)
            elif status == "pending":
                outcome.stuck.append(placement)
            if status is None or status == "pending" or count == 0:
                outcome.lost.append(placement)
            outcome.duplicates += max(0, count - 1)
        try:
            outcome.dead_lettered = sum(self._depths(DLQS).values()) - dlq_before
        except Exception as exc:  # noqa: BLE001
            self.log(f"chaos: could not read the DLQs: {exc}")
        self._health()
        return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--placements", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=15.0, help="placements a second")
    parser.add_argument("--kills", default=DEFAULT_KILLS, help=f"kind=count,... (default {DEFAULT_KILLS})")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quiet", type=float, default=60.0, help="give up draining after this long without progress")
    parser.add_argument("--file", type=Path, default=ROOT / "devenv.yaml")
    parser.add_argument("--instance", default=None, help="e.g. test: the tests' instance of the stack")
    parser.add_argument("--out", type=Path, default=None, help="write the table into this RESULTS.md")
    args = parser.parse_args(argv)
    try:
        kills = parse_kills(args.kills)
    except ValueError as exc:
        parser.error(str(exc))
    if args.placements < 1 or args.rate <= 0:
        parser.error("--placements must be at least 1 and --rate positive")

    sys.path.insert(0, str(ROOT))
    from devenv.config.loader import load_project
    from devenv.stack import Stack

    stack = Stack(load_project(args.file, instance=args.instance))
    if not stack.is_running():
        stack.up()
    up_argv = [sys.executable, "-m", "devenv", "up", "--file", str(args.file)]
    chaos = Chaos(stack, placements=args.placements, rate=args.rate, kills=kills, seed=args.seed,
                  quiet=args.quiet, up_argv=up_argv)
    outcome = chaos.run()
    text = outcome.table() + "\n\nKills:\n" + "\n".join(f"- {k}" for k in outcome.kills)
    print(text)
    if args.out:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from results import write_section

        write_section(args.out, "chaos", f"## Chaos: {args.placements} placements at {args.rate:g}/s "
                                         f"(kills: {args.kills})\n\n{text}")
    return 0 if not outcome.lost and not outcome.duplicates and outcome.healthy else 1


if __name__ == "__main__":
    sys.exit(main())
