"""What the edge adds to an API call: p50 direct to the API Gateway stage vs through the
edge (HTTPS, CloudFront's headers, a cache miss forwarded to the stage).

    python benchmarks/edge.py [--requests 2000] [--out benchmarks/RESULTS.md]

A copy of HEAD (git archive) in a throwaway folder runs a stack of one trivial function
behind `api:` and `edge:` (default behaviour: nothing cached, so every edge request is a
miss forwarded to the stage, the path whose overhead counts). After 200 warm-up requests,
GET /ping goes alternately direct (keep-alive HTTP to the stage) and through the edge
(keep-alive HTTPS to 127.0.0.1 trusting only the stack's CA, SNI and Host set to the
edge's hostname), request by request, the order flipped every round; a third series
measures cache hits (/cached, answered with max-age). Target from issue 17: the edge adds
<= 1 ms at p50. The stack is brought down (--volumes) and its folder removed at the end,
also on an error.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from lifecycle import devenv  # noqa: E402
from results import write_section  # noqa: E402

TARGET_MS = 1.0

STACK = """\
name: edgebench
infra: {postgres: false, redis: false}
tracing: {enabled: false, xray_daemon: false}
metrics: {enabled: false}
functions:
  ping: {handler: handlers.ping, code: functions}
api:
  routes:
    - {method: GET, path: /ping, function: ping}
    - {method: GET, path: /cached, function: ping}
edge:
  default_behavior: {default_ttl: 0}
"""

HANDLER = """\
def ping(event, context):
    headers = {"Content-Type": "application/json"}
    if event["path"] == "/cached":
        headers["Cache-Control"] = "max-age=3600"
    return {"statusCode": 200, "headers": headers, "body": '{"ok": true}'}
"""


class EdgeConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 under the edge's hostname (not every resolver knows .localhost)."""

    def __init__(self, hostname: str, port: int, context: ssl.SSLContext):
        super().__init__(hostname, port, context=context, timeout=30)
        self._create_connection = lambda address, *a, **k: socket.create_connection(("127.0.0.1", address[1]), *a, **k)


def timed_get(connection: http.client.HTTPConnection, path: str) -> float:
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    took = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise SystemExit(f"GET {path} answered {response.status}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per series")
    parser.add_argument("--out", type=Path, help="write the section into this file (benchmarks/RESULTS.md)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    project = Path(tempfile.mkdtemp(prefix="devenv-bench-edge-"))
    os.chmod(project, 0o755)
    series: dict[str, list[float]] = {"direct": [], "edge (miss)": [], "edge (hit)": []}
    started_at = time.monotonic()
    load_start = os.getloadavg()
    try:
        subprocess.run(f"git archive HEAD devenv pyproject.toml | tar -x -C {project}", shell=True, check=True,
                       cwd=ROOT)
        (project / "devenv.yaml").write_text(STACK)
        (project / "functions").mkdir()
        (project / "functions" / "handlers.py").write_text(HANDLER)
        devenv(project, "up")
        env = json.loads(devenv(project, "env", "--json").stdout)
        api, edge = urlsplit(env["DEVENV_API_URL"]), urlsplit(env["DEVENV_EDGE_URL"])
        direct = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
        through = EdgeConnection(edge.hostname, edge.port, ssl.create_default_context(cafile=env["DEVENV_EDGE_CA"]))
        stage = api.path.rstrip("/")
        calls = {"direct": lambda: timed_get(direct, stage + "/ping"),
                 "edge (miss)": lambda: timed_get(through, "/ping"),
                 "edge (hit)": lambda: timed_get(through, "/cached")}
        for _ in range(200):
            for call in calls.values():
                call()
        names = list(calls)
        for i in range(args.requests):
            for name in (names if i % 2 == 0 else names[::-1]):
                series[name].append(calls[name]())
        direct.close()
        through.close()
    finally:
        devenv(project, "down", "--volumes", check=False)
        shutil.rmtree(project, ignore_errors=True)

    p50 = {name: statistics.median(values) for name, values in series.items()}
    p99 = {name: sorted(values)[int(0.99 * (len(values) - 1))] for name, values in series.items()}
    added = p50["edge (miss)"] - p50["direct"]
    verdict = "meets target" if added <= TARGET_MS else "MISSES target"
    text = (f"## Edge overhead on an API call ({datetime.date.today()}, commit {commit}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()})\n\n"
            "One trivial function behind API Gateway; GET /ping direct (keep-alive HTTP to the stage) and through "
            "the edge (keep-alive HTTPS trusting only the stack's CA; nothing cached, every request a miss "
            "forwarded to the stage), alternating request by request (order flipped every round) after 200 "
            "warm-ups; `edge (hit)` is GET /cached answered from the edge's cache. Rerun: "
            f"`python benchmarks/edge.py --out benchmarks/RESULTS.md`. Run took {time.monotonic() - started_at:.0f} s; "
            f"load average {load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end.\n\n"
            "| path | p50 (ms) | p99 (ms) | requests |\n|---|---:|---:|---:|\n"
            + "".join(f"| {name} | {p50[name]:.2f} | {p99[name]:.2f} | {len(series[name])} |\n" for name in series)
            + f"\nAdded by the edge at p50 (miss - direct): {added:+.2f} ms (target <= {TARGET_MS:g} ms): {verdict}.\n")
    print(text)
    if args.out:
        write_section(args.out, "edge-overhead", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
