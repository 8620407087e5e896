"""The whole Nedlia stack on each emulator devenv runs (moto, ministack, LocalStack), in one run.

    python benchmarks/emulators.py [--emulators moto,ministack,localstack] [--placements 30]
                                   [--sqs-messages 30] [--out benchmarks/RESULTS.md]

Per emulator, on the native runtime, on a throwaway copy of HEAD (git archive):
- `up`, cold: a fresh state folder (initdb, the first deploy, the emulator's first start). The
  emulator's own environment (LocalStack's CPython 3.13 one, ministack's) is built by an
  untimed `up` before, as a developer's second project finds it.
- `up`, warm: the same stack stopped with its data.
- memory: the proportional set size (PSS, /proc/PID/smaps_rollup) of the supervisor's whole
  process tree, the stack up and idle after the lifecycle placements.
- lifecycle p50: POST /placements through API Gateway until the notification row is in
  Postgres (benchmarks/lifecycle.py's flow), one at a time after 5 warm-up placements.
- SQS send -> handler start p50: a second, small project (a queue and a function mapped to it)
  on the same emulator; the handler writes its own start time (benchmarks/lambda_vs_ministack.py's
  handler), one message at a time after 5 warm-up messages.
- e2e suite: `devenv e2e` with DEVENV_EMULATOR set (the stack's test instance, fresh state),
  its wall time including `up`, and pytest's counts.
Emulators run one after the other, never two at once.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from lambda_vs_ministack import HANDLER, handler_line  # noqa: E402
from lifecycle import devenv, lifecycle_ms, register  # noqa: E402
from results import write_section  # noqa: E402
from run import pss_kib, ppid_map, tree  # noqa: E402
from tracing_overhead import percentile  # noqa: E402

EMULATORS = ("moto", "ministack", "localstack")
WARM_UP = 5

SQS_YAML = """\
# Written by benchmarks/emulators.py for one run; the folder is removed afterwards.
name: emubench
region: us-east-1
runtime: native
infra: {postgres: false, redis: false}
queues:
  work:
    visibility_timeout: 30
functions:
  sqs:
    handler: handler.sqs
    code: code
    events:
      - sqs: {queue: work, batch_size: 10}
"""


def copy_of_head(label: str) -> Path:
    project = Path(tempfile.mkdtemp(prefix=f"devenv-bench-{label}-"))
    os.chmod(project, 0o755)
    subprocess.run(f"git archive HEAD | tar -x -C {project}", shell=True, check=True, cwd=ROOT)
    return project


def timed(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    result = devenv(project, *args, env=env, check=False, timeout=900)
    return time.monotonic() - started, result


def pss_mib(project: Path) -> float:
    record = json.loads((project / ".devenv" / "run" / "stack.json").read_text())
    pids = tree(int(record["supervisor_pid"]), ppid_map())
    return sum(pss_kib(pid) or 0 for pid in pids) / 1024


def sqs_p50(emulator: str, messages: int) -> tuple[float, int]:
    """send -> handler start (ms, p50) on a small project, and how many messages were timed."""
    import boto3

    project = Path(tempfile.mkdtemp(prefix="devenv-bench-emusqs-"))
    os.chmod(project, 0o755)
    subprocess.run(f"git archive HEAD devenv | tar -x -C {project}", shell=True, check=True, cwd=ROOT)
    (project / "code").mkdir()
    (project / "code" / "handler.py").write_text(HANDLER)
    (project / "devenv.yaml").write_text(SQS_YAML)
    out = project / "sqs.out"
    samples: list[float] = []
    try:
        devenv(project, "up", "--emulator", emulator, timeout=900)
        env = json.loads(devenv(project, "env", "--json").stdout)
        sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                           aws_access_key_id="test", aws_secret_access_key="test")
        url = sqs.get_queue_url(QueueName="work")["QueueUrl"]
        for index in range(WARM_UP + messages):
            before = out.stat().st_size if out.exists() else 0
            sent = time.time()
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"i": index, "t": sent, "out": str(out)}))
            line = handler_line(out, before, index)
            if line is None:
                raise SystemExit(f"{emulator}: message {index} reached no handler within 20 s")
            if index >= WARM_UP:
                samples.append((float(line.split()[2]) - sent) * 1000)
    finally:
        devenv(project, "down", "--volumes", check=False)
        shutil.rmtree(project, ignore_errors=True)
    return statistics.median(samples), len(samples)


def suite_counts(output: str) -> str:
    """pytest's summary counts, and the names of the tests that failed."""
    summaries = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    found = re.findall(r"(\d+) (passed|failed|skipped|errors?)", summaries[-1] if summaries else "")
    failed = re.findall(r"^(?:FAILED|ERROR) \S+::(\S+)", output, re.MULTILINE)
    counts = ", ".join(f"{n} {what}" for n, what in found) or "no summary"
    return counts + (f" ({'; '.join(failed)})" if failed else "")


def measure(emulator: str, placements: int, messages: int) -> dict[str, str]:
    import psycopg

    project = copy_of_head(f"emu-{emulator}")
    row: dict[str, str] = {}
    try:
        devenv(project, "up", "--emulator", emulator, timeout=900)  # builds the emulator's environment
        devenv(project, "down", "--volumes")
        cold, result = timed(project, "up", "--emulator", emulator)
        if result.returncode:
            raise SystemExit(f"{emulator}: up failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        env = json.loads(devenv(project, "env", "--json").stdout)
        api = env["DEVENV_API_URL"]
        video = f"vid-emu-{emulator}-{int(time.time())}"
        register(api, video)
        latencies = []
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            for i in range(WARM_UP + placements):
                took = lifecycle_ms(api, conn, video, i * 1.0)
                if i >= WARM_UP:
                    latencies.append(took)
        row["pss"] = f"{pss_mib(project):.0f}"
        devenv(project, "down")
        warm, result = timed(project, "up", "--emulator", emulator)
        if result.returncode:
            raise SystemExit(f"{emulator}: warm up failed:\n{result.stdout[-2000:]}")
        devenv(project, "down", "--volumes")
        ordered = sorted(latencies)
        row.update(cold=f"{cold:.1f}", warm=f"{warm:.1f}", lifecycle=f"{statistics.median(ordered):.0f}",
                   lifecycle99=f"{percentile(ordered, 0.99):.0f}")
        suite_time, suite = timed(project, "e2e", env={"DEVENV_EMULATOR": emulator})
        row["e2e"] = f"{suite_time:.0f}"
        row["e2e_counts"] = suite_counts(suite.stdout.strip()) + ("" if suite.returncode == 0 else ", exit " + str(suite.returncode))
    finally:
        devenv(project, "down", "--volumes", check=False)
        devenv(project, "down", "--volumes", check=False, env={"DEVENV_INSTANCE": "test"})
        shutil.rmtree(project, ignore_errors=True)
    sqs, n = sqs_p50(emulator, messages)
    row["sqs"], row["sqs_n"] = f"{sqs:.1f}", str(n)
    row["placements"] = str(placements)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emulators", default=",".join(EMULATORS))
    parser.add_argument("--placements", type=int, default=30, help="measured lifecycle placements per emulator")
    parser.add_argument("--sqs-messages", type=int, default=30, help="measured SQS messages per emulator")
    parser.add_argument("--out", type=Path, help="write the section into this file (benchmarks/RESULTS.md)")
    args = parser.parse_args()
    emulators = [e for e in args.emulators.split(",") if e]
    unknown = [e for e in emulators if e not in EMULATORS]
    if unknown:
        raise SystemExit(f"--emulators: unknown {', '.join(unknown)} (expected some of {', '.join(EMULATORS)})")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    load_start = os.getloadavg()
    started_at = time.monotonic()
    rows = {}
    for emulator in emulators:
        print(f"{emulator}…", flush=True)
        rows[emulator] = measure(emulator, args.placements, args.sqs_messages)
        print(f"{emulator}: {rows[emulator]}", flush=True)

    header = (f"## Each emulator under the whole stack ({datetime.date.today()}, commit {commit}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}, native runtime)\n\n"
              "One emulator after the other, never two at once. Cold `up`: fresh state "
              "(initdb, first deploy; the emulator's environment already built); warm `up`: stopped with "
              "its data. Memory: PSS of the stack's process tree, idle after the placements. Lifecycle: "
              "POST /placements -> notification stored, one at a time. SQS: send -> handler start on a "
              "small project with one queue and one mapped function. e2e: `devenv e2e` on the test "
              "instance, fresh, `up` included. Rerun: `python benchmarks/emulators.py --out "
              f"benchmarks/RESULTS.md`. Run took {time.monotonic() - started_at:.0f} s; load average "
              f"{load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end.\n")
    names = list(rows)
    table = ["| measure | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, key in (("up, cold (s)", "cold"), ("up, warm (s)", "warm"), ("memory, PSS (MiB)", "pss"),
                       ("lifecycle p50 (ms)", "lifecycle"), ("lifecycle p99 (ms)", "lifecycle99"),
                       ("SQS send -> handler start p50 (ms)", "sqs"), ("e2e suite incl. `up` (s)", "e2e"),
                       ("e2e suite result", "e2e_counts")):
        table.append(f"| {label} | " + " | ".join(rows[n][key] for n in names) + " |")
    text = header + "\n" + "\n".join(table) + "\n"
    print(text)
    if args.out:
        write_section(args.out, "emulators", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
