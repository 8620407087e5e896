#!/usr/bin/env python3
"""Benchmarks for the `devenv` lifecycle: up (cold, warm, already running), down, and the
stack's memory once up.

    python benchmarks/run.py [--runs N] [--cold-runs N] [--out benchmarks/RESULTS.md]
                             [--source head|worktree] [--cli COMMAND]

Every figure is the wall time of the real CLI run as a subprocess, so the CLI's own Python
start-up and imports are inside it. Everything happens in a throwaway project folder under
/tmp holding a copy of the repo's devenv.yaml; the script always ends with
`devenv down --volumes` and removes the folder, also on Ctrl-C, SIGTERM or an error.
By default the code measured is the HEAD commit, exported to /tmp and put first on
PYTHONPATH, so edits others make in the working tree cannot change the code mid-run.
After a warm-up, cold, warm, re-up and down runs are interleaved round by round, and every
`up` is checked (untimed) to have left the stack ready and the managed plane in moto.

Standard library only. See /work/shared/BENCHMARKS.md for how figures are reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "devenv.yaml"
sys.path.insert(0, str(REPO / "benchmarks"))
from results import write_samples, write_section  # noqa: E402


def write_infra_only(source: Path, target: Path) -> None:
    """The repo's stack without its compute plane, edge, seed and tour (functions, API, edge,
    services, load balancer): Postgres, Redis, the emulator and the managed plane, the part these figures
    and their targets are about. Function targets of rules are dropped with the functions."""
    import yaml

    data = yaml.safe_load(source.read_text())
    for key in ("functions", "api", "edge", "services", "load_balancer", "seed", "tour"):
        data.pop(key, None)
    for bus in (data.get("event_buses") or {}).values():
        for rule in list((bus or {}).get("rules", {}).values()):
            rule["targets"] = [t for t in rule.get("targets", []) if "function" not in t]
    target.write_text(yaml.safe_dump(data, sort_keys=False))

UP_TIMEOUT = 240.0     # seconds for one `devenv up` (cold includes initdb)
DOWN_TIMEOUT = 90.0
SMALL_TIMEOUT = 60.0

INTERRUPTED_BY_SIGNAL = [False]  # set when SIGTERM/SIGHUP (not a terminal's Ctrl-C) stops us

TARGETS = {"warm": "<= 3 s", "down": "<= 2 s"}
TARGET_SECONDS = {"warm": 3.0, "down": 2.0}


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------- the CLI under test


def cli_command(override: str | None) -> list[str]:
    """How to run devenv. Default: the console script installed beside this Python (what a
    user's `devenv` runs, without a pyenv/asdf shim in front), else `python -m devenv`."""
    if override:
        return override.split()
    script = Path(sys.executable).parent / "devenv"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "devenv"]


@dataclass
class Run:
    seconds: float
    stdout: str
    stderr: str


class Cli:
    def __init__(self, command: list[str], project: Path, source: Path | None):
        self.command = command
        self.project = project
        self.file = project / "devenv.yaml"
        env = dict(os.environ)
        env.pop("DEVENV_FILE", None)
        env["NO_COLOR"] = "1"
        if source is not None:  # the exported commit shadows the (editable) install
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
        self.env = env

    def run(self, *args: str, timeout: float, check: bool = True) -> Run:
        argv = [*self.command, *args, "--file", str(self.file)]
        code, stdout, stderr, seconds = self._spawn(argv, timeout)
        if code is None:
            raise BenchError(f"`devenv {' '.join(args)}` did not finish within {timeout:g}s\n"
                             f"{stdout}{stderr}")
        if check and code != 0:
            raise BenchError(f"`devenv {' '.join(args)}` exited {code}\n{stdout}{stderr}")
        return Run(seconds, stdout, stderr)

    def floor(self, timeout: float) -> float:
        """`devenv --help`: Python start-up plus the CLI's imports, nothing else."""
        code, stdout, stderr, seconds = self._spawn([*self.command, "--help"], timeout)
        if code != 0:
            raise BenchError(f"`devenv --help` failed ({code})\n{stdout}{stderr}")
        return seconds

    def _spawn(self, argv: list[str], timeout: float) -> tuple[int | None, str, str, float]:
        """Runs argv to completion: (exit code or None on timeout, stdout, stderr, wall seconds).

        Output goes to temporary files, not pipes, so a detached grandchild can never hold a
        pipe open. On Ctrl-C the CLI (same process group) gets the SIGINT too and stops what
        it started; unlike subprocess.run, which kills it after 0.25 s, we let it finish."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, cwd=self.project, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err)
            try:
                code: int | None = proc.wait(timeout=timeout)
                seconds = time.perf_counter() - started
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code, seconds = None, time.perf_counter() - started
            except KeyboardInterrupt:
                if INTERRUPTED_BY_SIGNAL[0]:  # SIGTERM/SIGHUP reached only us: pass it on
                    proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=60)
                except (subprocess.TimeoutExpired, KeyboardInterrupt):
                    proc.kill()
                    proc.wait()
                raise
            out.seek(0)
            err.seek(0)
            return (code, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                    seconds)


# ---------------------------------------------------------------- processes and memory


def proc_start(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live pid, or None (gone, or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else int(fields[19])


def ppid_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited while listing
        fields = text[text.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree(pid: int, children: dict[int, list[int]]) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.add(current)
        todo.extend(children.get(current, ()))
    return found


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0  # exited, or a kernel thread without VmRSS


def pss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def read_record(project: Path) -> dict | None:
    try:
        return json.loads((project / ".devenv" / "run" / "stack.json").read_text())
    except (OSError, ValueError):
        return None


@dataclass
class MemorySample:
    total_rss: int                     # KiB, each pid counted once
    per_part: dict[str, int]           # KiB: "supervisor" (itself) and each component's tree
    total_pss: int | None              # KiB, None when smaps_rollup is unreadable
    processes: int


def sample_memory(record: dict) -> MemorySample:
    children = ppid_map()
    sup = int(record["supervisor_pid"])
    parts: dict[str, set[int]] = {}
    for c in record["components"]:
        if c.get("pid"):
            parts[c["name"]] = tree(int(c["pid"]), children)
    everything = tree(sup, children)
    for pids in parts.values():
        everything |= pids
    in_components = set().union(*parts.values()) if parts else set()
    # The supervisor process itself plus any helper of its own that is not a component.
    parts = {"supervisor": tree(sup, children) - in_components, **parts}
    rss = {pid: rss_kib(pid) for pid in everything}
    pss_values = [pss_kib(pid) for pid in everything]
    total_pss = None if any(v is None for v in pss_values) else sum(pss_values)  # type: ignore[arg-type]
    return MemorySample(
        total_rss=sum(rss.values()),
        per_part={name: sum(rss[p] for p in pids) for name, pids in parts.items()},
        total_pss=total_pss,
        processes=len(everything),
    )


# ---------------------------------------------------------------- the stack's state


@dataclass
class Tracker:
    """Every (pid, start) the stack reported, so cleanup can reach a leftover by identity."""

    seen: set[tuple[int, int | None]] = field(default_factory=set)

    def note(self, record: dict | None) -> None:
        if not record:
            return
        self.seen.add((int(record["supervisor_pid"]), record.get("supervisor_start")))
        for c in record["components"]:
            if c.get("pid"):
                self.seen.add((int(c["pid"]), c.get("pid_start")))

    def alive(self) -> list[int]:
        return [pid for pid, start in self.seen
                if proc_start(pid) is not None and (start is None or proc_start(pid) == start)]


def expect_up(project: Path, tracker: Tracker) -> dict:
    record = read_record(project)
    tracker.note(record)
    if record is None or record.get("phase") != "ready":
        raise BenchError(f"after `devenv up` the record says {record and record.get('phase')!r}, not ready")
    for c in record["components"]:
        if c.get("state") != "ready" or not c.get("pid") or proc_start(int(c["pid"])) is None:
            raise BenchError(f"after `devenv up` {c['name']} is {c.get('state')} (pid {c.get('pid')})")
    if proc_start(int(record["supervisor_pid"])) is None:
        raise BenchError("after `devenv up` the supervisor is not running")
    return record


def expected_plane(python: str, config: Path, env: dict[str, str]) -> dict:
    """The managed plane devenv.yaml declares, read with devenv's own loader (run by the CLI's
    Python, so this script needs no YAML parser)."""
    code = ("import json, sys\n"
            "from devenv.config.loader import load_project\n"
            "c = load_project(__import__('pathlib').Path(sys.argv[1])).config\n"
            "print(json.dumps({'buckets': sorted(c.buckets), 'queues': sorted(c.queues),\n"
            "                  'rules': {b: sorted(v.rules) for b, v in c.event_buses.items()}}))")
    done = subprocess.run([python, "-c", code, str(config)], capture_output=True, text=True, timeout=60,
                          env=env, cwd=config.parent)  # not the repo: '' on sys.path would import it
    if done.returncode != 0:
        raise BenchError(f"could not read the managed plane from {config}:\n{done.stderr}")
    return json.loads(done.stdout)


def _aws(endpoint: str, service: str, body: bytes, headers: dict[str, str] | None = None,
         method: str = "POST") -> str:
    """An unsigned call to moto, routed by the credential scope in a dummy Authorization."""
    auth = (f"AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/{service}/aws4_request, "
            "SignedHeaders=host, Signature=0")
    request = urllib.request.Request(endpoint + "/", data=body if method == "POST" else None,
                                     method=method, headers={"Authorization": auth, **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def expect_plane(record: dict, plane: dict) -> None:
    """After `up` returns, the managed plane must already exist (checked untimed)."""
    endpoint = f"http://127.0.0.1:{record['ports']['emulator']}"
    missing: list[str] = []
    try:
        buckets = _aws(endpoint, "s3", b"", method="GET")
        missing += [f"bucket {b}" for b in plane["buckets"] if f"<Name>{b}</Name>" not in buckets]
        queues = _aws(endpoint, "sqs", b"Action=ListQueues",
                      {"Content-Type": "application/x-www-form-urlencoded"})
        missing += [f"queue {q}" for q in plane["queues"] if f"/{q}</QueueUrl>" not in queues]
        for bus, rules in plane["rules"].items():
            listed = json.loads(_aws(endpoint, "events", json.dumps({"EventBusName": bus}).encode(),
                                     {"X-Amz-Target": "AWSEvents.ListRules",
                                      "Content-Type": "application/x-amz-json-1.1"}))
            names = {r["Name"] for r in listed.get("Rules", [])}
            missing += [f"rule {bus}/{r}" for r in rules if r not in names]
    except (OSError, ValueError) as exc:
        raise BenchError(f"could not list the managed plane at {endpoint}: {exc}") from None
    if missing:
        raise BenchError(f"`devenv up` returned before the managed plane was deployed: missing {missing}")


def expect_down(record: dict, tracker: Tracker) -> None:
    pids = [int(record["supervisor_pid"])] + [int(c["pid"]) for c in record["components"] if c.get("pid")]
    left = [p for p in pids if proc_start(p) is not None]
    if left:
        raise BenchError(f"after `devenv down` these stack processes still run: {left}")


# ---------------------------------------------------------------- statistics


def median(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    """Nearest-rank p99: with fewer than 100 runs this is the maximum."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def fmt_s(value: float) -> str:
    return f"{value:.2f} s"


def fmt_mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


# ---------------------------------------------------------------- the benchmark


@dataclass
class Results:
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    reup: list[float] = field(default_factory=list)
    down: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    memory: list[MemorySample] = field(default_factory=list)
    ready_after: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # kind -> component -> s
    in_cli: dict[str, list[float]] = field(default_factory=dict)   # kind -> the CLI's own "is up (Xs)"
    deploy: dict[str, list[float]] = field(default_factory=dict)   # kind -> "applied in Xs"
    versions: dict[str, str] = field(default_factory=dict)
    commit: str = ""
    running_from: str = ""   # where the CLI imported devenv from
    digests: list[str] = field(default_factory=list)  # devenv/ source at start and end
    load: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)

    def note_ready(self, kind: str, record: dict) -> None:
        for c in record["components"]:
            if c.get("ready_after") is not None:
                self.ready_after.setdefault(kind, {}).setdefault(c["name"], []).append(float(c["ready_after"]))

    def note_output(self, kind: str, stdout: str) -> None:
        """What the CLI itself reports: its elapsed time after loading the config (0.1 s
        resolution) and the managed-plane apply time."""
        up = re.search(r"is up \(([0-9.]+)s\)", stdout)
        if up:
            self.in_cli.setdefault(kind, []).append(float(up.group(1)))
        applied = re.search(r"managed plane: \d+ change\(s\) applied in ([0-9.]+)s", stdout)
        if applied:
            self.deploy.setdefault(kind, []).append(float(applied.group(1)))


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench(cli: Cli, runs: int, cold_runs: int, results: Results, tracker: Tracker) -> None:
    project = cli.project
    plane = expected_plane(cli_python_exe(cli.command), cli.file, cli.env)
    results.load.append(("start", os.getloadavg()))

    # Warm-up (not counted): one cold up, re-up, down, warm up, down, then wipe.
    say("warm-up (not counted)…")
    cli.run("up", timeout=UP_TIMEOUT)
    record = expect_up(project, tracker)
    expect_plane(record, plane)
    results.versions = component_versions(record)
    wanted = cli.env.get("PYTHONPATH")
    if wanted:  # the supervisor must run the same code as the CLI
        try:
            environ = Path(f"/proc/{record['supervisor_pid']}/environ").read_bytes().split(b"\0")
        except OSError:
            environ = []
        if f"PYTHONPATH={wanted}".encode() not in environ:
            raise BenchError("the supervisor does not run with the benchmark's PYTHONPATH")
    cli.run("up", timeout=UP_TIMEOUT)
    cli.run("down", timeout=DOWN_TIMEOUT)
    expect_down(record, tracker)
    cli.run("up", timeout=UP_TIMEOUT)
    record = expect_up(project, tracker)
    cli.floor(SMALL_TIMEOUT)
    cli.run("down", "--volumes", timeout=DOWN_TIMEOUT)
    expect_down(record, tracker)

    # Rounds, interleaved so that drift in the machine's load hits every measure alike:
    #   [cold up on a fresh state folder -> down (not timed)]   in the first `cold_runs` rounds
    #   warm up -> re-up -> memory sample -> down -> `devenv --help`   in the first `runs` rounds
    #   [down --volumes (not timed), so the next cold up starts fresh]
    for i in range(max(runs, cold_runs)):
        line = [f"round {i + 1}:"]
        if i < cold_runs:
            if (project / ".devenv").exists():
                raise BenchError("the state folder survived `devenv down --volumes`")
            cold = cli.run("up", timeout=UP_TIMEOUT)
            record = expect_up(project, tracker)
            expect_plane(record, plane)
            results.cold.append(cold.seconds)
            results.note_ready("cold", record)
            results.note_output("cold", cold.stdout)
            line.append(f"cold up {cold.seconds:.2f}s")
            cli.run("down", timeout=DOWN_TIMEOUT)
            expect_down(record, tracker)
        if i < runs:
            warm = cli.run("up", timeout=UP_TIMEOUT)
            record = expect_up(project, tracker)
            expect_plane(record, plane)
            results.warm.append(warm.seconds)
            results.note_ready("warm", record)
            results.note_output("warm", warm.stdout)

            reup = cli.run("up", timeout=UP_TIMEOUT)
            if "already running" not in reup.stdout:
                raise BenchError(f"the second `devenv up` did not find the stack running:\n{reup.stdout}")
            again = expect_up(project, tracker)
            if again["supervisor_pid"] != record["supervisor_pid"]:
                raise BenchError("the re-up started a new supervisor")
            results.reup.append(reup.seconds)
            results.note_output("reup", reup.stdout)

            results.memory.append(sample_memory(again))

            down = cli.run("down", timeout=DOWN_TIMEOUT)
            expect_down(again, tracker)
            results.down.append(down.seconds)

            results.floor.append(cli.floor(SMALL_TIMEOUT))
            line.append(f"warm up {warm.seconds:.2f}s, re-up {reup.seconds:.2f}s, down {down.seconds:.2f}s, "
                        f"RSS {results.memory[-1].total_rss / 1024:.0f} MiB")
        if i + 1 < cold_runs:
            cli.run("down", "--volumes", timeout=DOWN_TIMEOUT)
        say(" ".join(line))
    results.load.append(("end", os.getloadavg()))


def component_versions(record: dict) -> dict[str, str]:
    """Versions of the binaries that actually ran, found from the running pids."""
    versions: dict[str, str] = {}
    for c in record["components"]:
        try:  # argv[0], not /proc/<pid>/exe: Debian's redis-server is a link to redis-check-rdb
            # (and redis rewrites its title to "redis-server host:port", so split on spaces too)
            exe = Path(f"/proc/{c['pid']}/cmdline").read_bytes().split(b"\0")[0].decode().split()[0]
            if not os.path.isabs(exe):
                exe = os.readlink(f"/proc/{c['pid']}/exe")
        except (OSError, IndexError, UnicodeDecodeError):
            continue
        if c["name"] == "emulator":
            argv = [exe, "-c", "import importlib.metadata as m; print('moto ' + m.version('moto'))"]
        else:
            argv = [exe, "--version"]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        versions[c["name"]] = out.splitlines()[0] if out else f"unknown ({exe})"
    return versions


def cleanup(cli: Cli, tracker: Tracker) -> list[str]:
    """`devenv down --volumes`, then stop anything of the stack still alive, then rm the folder."""
    problems: list[str] = []
    try:
        cli.run("down", "--volumes", timeout=DOWN_TIMEOUT)
    except (BenchError, OSError) as exc:
        problems.append(f"`devenv down --volumes` failed: {str(exc).strip()[-1500:]}")
    tracker.note(read_record(cli.project))
    for pid in tracker.alive():
        problems.append(f"killed leftover stack process {pid}")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(cli.project, ignore_errors=True)
    if cli.project.exists():
        problems.append(f"could not remove {cli.project}")
    return problems


# ---------------------------------------------------------------- reporting


def table(results: Results) -> str:
    rows = [("measure", "median", "p99", "runs", "target"), ("---", "---:", "---:", "---:", "---")]

    def timing(label: str, values: list[float], target: str = "—") -> None:
        if values:
            rows.append((label, fmt_s(median(values)), fmt_s(p99(values)), str(len(values)), target))

    timing("`devenv up` cold (fresh state: initdb + first deploy) → all healthy", results.cold)
    timing("`devenv up` warm (existing data, stack down) → all healthy", results.warm, TARGETS["warm"])
    timing("`devenv up` already running (nothing to change)", results.reup)
    timing("`devenv down` (running → everything stopped)", results.down, TARGETS["down"])
    timing("reference: `devenv --help` (Python start-up + CLI imports)", results.floor)
    if results.memory:
        n = str(len(results.memory))
        totals = [m.total_rss for m in results.memory]
        rows.append(("total RSS of the stack (supervisor + components + descendants)",
                     fmt_mib(median(totals)), fmt_mib(p99(totals)), n, "—"))
        for name in results.memory[0].per_part:
            values = [m.per_part.get(name, 0) for m in results.memory]
            label = "RSS: supervisor (itself)" if name == "supervisor" else f"RSS: {name} (with descendants)"
            rows.append((label, fmt_mib(median(values)), fmt_mib(p99(values)), n, "—"))
        pss = [m.total_pss for m in results.memory if m.total_pss is not None]
        if len(pss) == len(results.memory):
            rows.append(("total PSS of the stack (shared pages split, not in the brief)",
                         fmt_mib(median(pss)), fmt_mib(p99(pss)), n, "—"))
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def verdicts(results: Results) -> list[str]:
    lines = []
    for key, values, label in (("warm", results.warm, "warm `devenv up`"), ("down", results.down, "`devenv down`")):
        if not values:
            continue
        limit = TARGET_SECONDS[key]
        med, top = median(values), p99(values)
        met = sum(v <= limit for v in values)
        lines.append(f"- {label}: target {TARGETS[key]}; median {fmt_s(med)} "
                     f"({'meets' if med <= limit else 'misses'} it), p99 {fmt_s(top)} "
                     f"({'meets' if top <= limit else 'misses'} it); {met}/{len(values)} runs within.")
    return lines


def breakdown(results: Results) -> list[str]:
    lines = []
    walls = {"cold": results.cold, "warm": results.warm, "reup": results.reup}
    names = {"cold": "cold up", "warm": "warm up", "reup": "re-up"}
    for kind, wall in walls.items():
        inside = results.in_cli.get(kind)
        if wall and inside:
            text = (f"- Where a {names[kind]} goes (medians): wall {fmt_s(median(wall))}; the CLI's own "
                    f"\"is up (Xs)\" time (from after loading devenv.yaml to ready; 0.1 s resolution) "
                    f"{fmt_s(median(inside))}, so about {fmt_s(median(wall) - median(inside))} is Python "
                    "start-up, imports, config loading and printing")
            if results.deploy.get(kind):
                text += f"; managed-plane apply {fmt_s(median(results.deploy[kind]))}"
            lines.append(text + ".")
    for kind in ("cold", "warm"):
        parts = results.ready_after.get(kind, {})
        if parts:
            text = ", ".join(f"{name} {median(v):.2f} s" for name, v in parts.items())
            lines.append(f"- Component spawn → ready (median, stack.json `ready_after`), {kind} up: {text}. "
                         "The supervisor marks the emulator ready only after it has deployed the managed "
                         "plane, so the emulator's figure includes that deploy.")
    return lines


def machine() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 0
    info["nproc"] = str(affinity)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        info["memory"] = "unknown"
    info["cpu"] = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["kernel"] = platform.release()
    return info


def export_head(into: Path, revision: str = "HEAD") -> str:
    """Exports a commit's devenv/ package and devenv.yaml (git archive; HEAD unless told)
    into a folder; returns the commit. The run then uses exactly that commit, whatever
    others edit meanwhile."""
    commit = git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if not commit:
        raise BenchError(f"{revision!r} is not a commit of this checkout (or use --source worktree)")
    archive = subprocess.run(["git", "archive", commit, "devenv", "devenv.yaml"], cwd=REPO,
                             capture_output=True, timeout=60)
    if archive.returncode != 0:
        raise BenchError(f"git archive failed: {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=60)
    return commit


def which_devenv(python: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([python, "-c", "import devenv; print(devenv.__file__)"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def source_digest() -> str:
    """A digest of the devenv package's source, to notice edits made while the run goes on."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "devenv").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            pass
    return digest.hexdigest()[:12]


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cli_python_exe(command: list[str]) -> str:
    """The Python the CLI (and therefore the supervisor and moto) runs under."""
    exe = command[0]
    if exe != sys.executable:
        try:
            first = Path(exe).read_text(errors="replace").splitlines()[0]
            if first.startswith("#!"):
                exe = first[2:].strip().split()[0]
        except (OSError, IndexError, UnicodeDecodeError):
            pass
    return exe


def cli_python(command: list[str]) -> str:
    exe = cli_python_exe(command)
    try:
        out = subprocess.run([exe, "-c", "import sys, platform; print(platform.python_implementation(), "
                              "sys.version.split()[0], sys.executable)"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        return out or exe
    except (OSError, subprocess.SubprocessError):
        return exe


def report(results: Results, args: argparse.Namespace, command: list[str], when: dt.datetime,
           took: float, problems: list[str]) -> str:
    m = machine()
    commit = results.commit or "unknown"
    if args.source == "head":
        source_line = (f"- Code measured: commit {commit} exactly — devenv/ and devenv.yaml exported with "
                       "`git archive` and put first on PYTHONPATH (devenv imported from "
                       f"{results.running_from}), so concurrent edits in the working tree did not reach the run")
    else:
        status = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                                text=True, timeout=30).stdout
        dirty = [line[3:] for line in status.splitlines()
                 if line.strip() and not line[3:].startswith("benchmarks/")]
        source_line = f"- Code measured: the working tree on commit {commit}"
        source_line += (f", with uncommitted/untracked changes (others edit concurrently): "
                        f"{', '.join(dirty[:12])}{' …' if len(dirty) > 12 else ''}") if dirty else \
            " (clean outside benchmarks/)"
        source_line += (f"; devenv/ source digest {results.digests[0]} at start, {results.digests[-1]} at the "
                        "end — edited during the run, so later runs may have used newer code"
                        if len(set(results.digests)) > 1 else "; devenv/ unchanged during the run")
    v = results.versions
    load = "; ".join(f"{when_}: {a:.2f} {b:.2f} {c:.2f}" for when_, (a, b, c) in results.load)
    lines = [
        "# devenv lifecycle benchmarks",
        "",
        f"- Date: {when.strftime('%Y-%m-%d %H:%M UTC')} (the run took {took / 60:.1f} min)",
        f"- Machine: {m['nproc']} CPUs (nproc), {m['memory']} memory, {m['cpu']}, Linux {m['kernel']}; "
        "a shared box: other people's work may run beside the benchmark (see the load average)",
        f"- Load average (1/5/15 min): {load}",
        f"- Python (CLI, supervisor and moto): {cli_python(command)}",
        f"- Git commit (git rev-parse --short HEAD): {commit}",
        source_line,
        f"- PostgreSQL: {v.get('postgres', 'not run')}",
        f"- Redis: {v.get('redis', 'not run')}",
        f"- moto: {v.get('emulator', 'not run')}",
        f"- CLI invoked as: `{' '.join(command)} <command> --file <project>/devenv.yaml` "
        "(stdout/stderr captured, so not a terminal: plain progress lines, no live table)",
        "",
        table(results),
        "",
        "p99 is nearest-rank: with fewer than 100 runs it is the maximum of the runs. "
        "No peer is measured for these figures; the targets come from the issue.",
        "",
        "## Against the targets",
        "",
        *verdicts(results),
        "",
        "## How to rerun",
        "",
        f"`python benchmarks/run.py --runs {args.runs} --cold-runs {args.cold_runs} --out benchmarks/RESULTS.md` "
        "from the repo root (add `--source worktree` to measure uncommitted code), with devenv installed "
        "in that Python and PostgreSQL/Redis/moto available (`devenv doctor`). It takes a few minutes "
        "and leaves nothing running.",
        "",
        "## Notes",
        "",
        "- Every time is the wall time of the CLI as a subprocess, from spawn to exit, so it includes "
        "the CLI's own Python start-up and imports (see the `devenv --help` reference row). "
        "`up` returns only when every component is healthy and the managed plane "
        "(queues, buses, rules, buckets) is deployed.",
        "- Sequence: one warm-up cycle (cold up, re-up, down, warm up, down --volumes; not counted); "
        "then interleaved rounds: [cold `up` on a freshly wiped state folder → `down`, untimed] "
        f"in the first {len(results.cold)} rounds; warm `up` → re-`up` → memory sample → `down` → "
        f"`devenv --help` in the first {len(results.warm)} rounds; [`down --volumes`, untimed] before "
        "each further cold round. \"Cold\" means a fresh .devenv/ (initdb, "
        "secrets, first deploy), not a cold OS page cache: binaries and Python modules are cached "
        "after the warm-up.",
        "- moto keeps its state in memory, so a warm `up` also deploys the whole managed plane again; "
        "cold and warm differ mainly by initdb and database creation.",
        "- RSS: VmRSS from /proc/<pid>/status summed over the supervisor, each component pid and all "
        "their descendants (found through /proc/*/stat ppid), each pid once, sampled right after the "
        "re-up. Summed RSS counts shared pages (Postgres shared buffers, shared libraries) once per "
        "process, so it overstates the real footprint; the PSS row splits shared pages instead.",
        "- The machine is a shared 2-core box: other engineers' tests and servers run at the same time, "
        "and the CLI, supervisor, Postgres, Redis and moto all compete for the same 2 cores.",
        *breakdown(results),
    ]
    if problems:
        lines += ["", "## Cleanup problems", "", *(f"- {p}" for p in problems)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="counted runs of warm up, re-up and down (default 10)")
    parser.add_argument("--cold-runs", type=int, default=5, help="counted cold ups (default 5)")
    parser.add_argument("--out", type=Path, help="write the report here (e.g. benchmarks/RESULTS.md)")
    parser.add_argument("--cli", help="command that runs devenv (default: the console script beside this Python)")
    parser.add_argument("--source", choices=("head", "worktree"), default="head",
                        help="head (default): run devenv/ and devenv.yaml exported from the HEAD commit, "
                             "so concurrent edits cannot change the code mid-run; worktree: run the "
                             "working tree as it is")
    parser.add_argument("--commit", default="HEAD", help="with --source head: the commit to export (default HEAD)")
    parser.add_argument("--json", type=Path, help="also write the samples here (benchmarks/ab.py reads them)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.cold_runs < 1:
        parser.error("--runs and --cold-runs must be at least 1")
    if not CONFIG.is_file():
        parser.error(f"{CONFIG} not found")

    command = cli_command(args.cli)
    results = Results()
    snapshot: Path | None = None
    config = CONFIG
    results.commit = git("rev-parse", "--short", "HEAD")
    if args.source == "head":
        snapshot = Path(tempfile.mkdtemp(prefix="devenv-bench-src-", dir="/tmp"))
        os.chmod(snapshot, 0o755)
        try:
            results.commit = git("rev-parse", "--short", export_head(snapshot, args.commit))
        except (BenchError, subprocess.SubprocessError, OSError) as exc:
            shutil.rmtree(snapshot, ignore_errors=True)
            say(f"benchmark failed: {exc}")
            return 1
        config = snapshot / "devenv.yaml"
    project = Path(tempfile.mkdtemp(prefix="devenv-bench-", dir="/tmp"))
    os.chmod(project, 0o755)  # Postgres runs as 'postgres' under root and must reach the folder
    write_infra_only(config, project / "devenv.yaml")
    cli = Cli(command, project, snapshot)
    tracker = Tracker()
    results.running_from = which_devenv(cli_python_exe(command), cli.env, project)
    if snapshot is not None and not results.running_from.startswith(str(snapshot)):
        shutil.rmtree(snapshot, ignore_errors=True)
        shutil.rmtree(project, ignore_errors=True)
        say(f"benchmark failed: PYTHONPATH did not take: devenv imports from {results.running_from}")
        return 1

    def on_term(signum, frame):  # treat SIGTERM/SIGHUP like Ctrl-C so cleanup runs
        INTERRUPTED_BY_SIGNAL[0] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    when = dt.datetime.now(dt.timezone.utc)
    results.digests.append(source_digest())
    started = time.monotonic()
    say(f"project folder: {project}; CLI: {' '.join(command)}; devenv from {results.running_from}"
        + (f" (commit {results.commit})" if snapshot else " (working tree)"))
    failed: BaseException | None = None
    try:
        bench(cli, args.runs, args.cold_runs, results, tracker)
    except (BenchError, KeyboardInterrupt) as exc:
        failed = exc
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let cleanup finish on a second Ctrl-C
        problems = cleanup(cli, tracker)
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    took = time.monotonic() - started
    results.digests.append(source_digest())

    for problem in problems:
        say(f"cleanup: {problem}")
    if isinstance(failed, KeyboardInterrupt):
        say("interrupted; the stack was stopped and the project folder removed")
        return 130
    if failed is not None:
        say(f"benchmark failed: {failed}")
        return 1

    print(table(results))
    for line in verdicts(results):
        print(line)
    print("p99 is nearest-rank: with fewer than 100 runs it is the maximum.")
    for line in breakdown(results):
        print(line)
    if args.json:
        write_samples(args.json, results.commit, {
            "up, cold (s)": results.cold, "up, warm (s)": results.warm,
            "up, already running (s)": results.reup, "down (s)": results.down,
            "RSS of the stack (MiB)": [m.total_rss / 1024 for m in results.memory]})
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_section(args.out, "up-down", report(results, args, command, when, took, problems))
        say(f"wrote its section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
