"""What moto's durable state costs: warm `up` with a full plane, and the journal per call.

    python benchmarks/durable_state.py [--messages 10000] [--objects 1000] [--rounds 3] [--out benchmarks/RESULTS.md]

Warm up: on a throwaway copy of HEAD (git archive), `up` the whole stack (devenv.yaml and its
overlay), park --messages messages (1 KB each) in a queue nobody consumes and --objects
objects (4 KB each) in a bucket, then `down` / `up` --rounds times: each `up` restores the
plane (moto's log says how long that took) before the emulator answers. Target: <= 3 s.

Per call: devenv's moto launcher alone, with and without --state-dir, one keep-alive
connection: SendMessage, ReceiveMessage + DeleteMessage and PutObject, interleaved
rounds, median per call.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
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
sys.path.insert(0, str(ROOT))
from lifecycle import devenv  # noqa: E402
from results import write_section  # noqa: E402

PARKED_QUEUE = "bench-parked"
BUCKET = "bench-durable"
SQS = {"Content-Type": "application/x-amz-json-1.0",
       "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, "
                        "SignedHeaders=host, Signature=x"}
S3 = {"Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, "
                       "SignedHeaders=host, Signature=x"}


def fill(endpoint: str, messages: int, objects: int) -> None:
    import boto3

    kwargs = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                  aws_secret_access_key="test")
    sqs, s3 = boto3.client("sqs", **kwargs), boto3.client("s3", **kwargs)
    url = sqs.create_queue(QueueName=PARKED_QUEUE)["QueueUrl"]
    body = "x" * 1024
    for start in range(0, messages, 10):
        entries = [{"Id": str(n), "MessageBody": body} for n in range(min(10, messages - start))]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    s3.create_bucket(Bucket=BUCKET)
    blob = os.urandom(4096)
    for n in range(objects):
        s3.put_object(Bucket=BUCKET, Key=f"objects/{n:05d}", Body=blob, ContentType="application/octet-stream")


def warm_up(rounds: int, messages: int, objects: int) -> tuple[list[float], list[str]]:
    project = Path(tempfile.mkdtemp(prefix="devenv-bench-durable-"))
    os.chmod(project, 0o755)
    subprocess.run(f"git archive HEAD | tar -x -C {project}", shell=True, check=True, cwd=ROOT)
    took: list[float] = []
    restored: list[str] = []
    try:
        devenv(project, "up")
        fill(json.loads(devenv(project, "env", "--json").stdout)["AWS_ENDPOINT_URL"], messages, objects)
        for _ in range(rounds):
            devenv(project, "down")
            started = time.monotonic()
            devenv(project, "up")
            took.append(time.monotonic() - started)
            log = (project / ".devenv" / "logs" / "emulator.log").read_text(errors="replace")
            restored.append(re.findall(r"state restored: .*", log)[-1])
    finally:
        devenv(project, "down", "--volumes", check=False)
        shutil.rmtree(project, ignore_errors=True)
    return took, restored


class Launcher:
    def __init__(self, state: Path | None):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        options = ["--state-dir", str(state)] if state else []
        self.process = subprocess.Popen([sys.executable, "-m", "devenv.infra.moto_server", "-H", "127.0.0.1",
                                         "-p", str(self.port), *options], cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.call("CreateQueue", {"QueueName": "bench"})
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.url = self.call("GetQueueUrl", {"QueueName": "bench"})["QueueUrl"]
        self.conn.request("PUT", "/bench", headers=S3)
        self.conn.getresponse().read()

    def call(self, action: str, body: dict) -> dict:
        self.conn.request("POST", "/", body=json.dumps(body), headers={**SQS, "X-Amz-Target": f"AmazonSQS.{action}"})
        response = self.conn.getresponse()
        payload = response.read()
        assert response.status == 200, payload
        return json.loads(payload) if payload else {}

    def rounds(self, n: int) -> dict[str, float]:
        """Seconds per call of each kind, over ``n`` calls each."""
        timings = {}
        started = time.perf_counter()
        for i in range(n):
            self.call("SendMessage", {"QueueUrl": self.url, "MessageBody": "x" * 512})
        timings["SendMessage"] = (time.perf_counter() - started) / n
        started = time.perf_counter()
        for i in range(n):
            got = self.call("ReceiveMessage", {"QueueUrl": self.url, "MaxNumberOfMessages": 1})["Messages"][0]
            self.call("DeleteMessage", {"QueueUrl": self.url, "ReceiptHandle": got["ReceiptHandle"]})
        timings["ReceiveMessage + DeleteMessage"] = (time.perf_counter() - started) / n
        blob = os.urandom(4096)
        started = time.perf_counter()
        for i in range(n):
            self.conn.request("PUT", f"/bench/k{i % 50}", body=blob, headers=S3)
            self.conn.getresponse().read()
        timings["PutObject (4 KB)"] = (time.perf_counter() - started) / n
        return timings

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def per_call(rounds: int, calls: int) -> dict[str, tuple[float, float]]:
    state = Path(tempfile.mkdtemp(prefix="devenv-bench-journal-"))
    durable, volatile = Launcher(state), Launcher(None)
    samples: dict[str, dict[str, list[float]]] = {"memory": {}, "journal": {}}
    try:
        for _ in range(rounds):
            for name, launcher in (("memory", volatile), ("journal", durable)):
                for kind, seconds in launcher.rounds(calls).items():
                    samples[name].setdefault(kind, []).append(seconds)
    finally:
        durable.stop()
        volatile.stop()
        shutil.rmtree(state, ignore_errors=True)
    return {kind: (statistics.median(samples["memory"][kind]), statistics.median(samples["journal"][kind]))
            for kind in samples["memory"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    costs = per_call(args.rounds, args.calls)
    took, restored = warm_up(args.rounds, args.messages, args.objects)
    lines = [f"## Durable emulator state ({datetime.date.today()}, commit {commit}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()})", "",
             "Rerun: `python benchmarks/durable_state.py --out benchmarks/RESULTS.md`.", "",
             "| measure | in memory | journaled | difference |", "|---|---|---|---|"]
    for kind, (memory, journal) in costs.items():
        lines.append(f"| {kind}, ms per call (median of {args.rounds} x {args.calls}) | {memory * 1000:.2f} | "
                     f"{journal * 1000:.2f} | {(journal / memory - 1) * 100:+.0f} % |")
    lines += ["", f"Warm `up` of the whole stack with {args.messages} messages and {args.objects} objects stored "
              f"(target <= 3 s): {', '.join(f'{t:.2f}' for t in took)} s (median {statistics.median(took):.2f} s).",
              f"Emulator: {restored[-1]}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_section(args.out, "durable-state", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
