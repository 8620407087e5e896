"""`devenv logs -f` as a process: lines written after it started reach it with their trace,
filtered by trace and level. No stack is needed: it reads .devenv/logs and .devenv/traces."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

from devenv.observe.spans import FileSpanSink, Span

ROOT = "1-6b0c0003-0123456789abcdef01234567"
OTHER = "1-6b0c0004-fedcba9876543210fedcba98"
REQ = "11111111-2222-3333-4444-555555555555"


def test_follow_merges_new_lines_with_trace_ids_and_filters(tmp_path):
    (tmp_path / "devenv.yaml").write_text("name: logs-it\n")
    logs = tmp_path / ".devenv" / "logs"
    (logs / "functions").mkdir(parents=True)
    (logs / "services").mkdir()
    function_log = logs / "functions" / "worker.log"
    service_log = logs / "services" / "orders.log"
    function_log.write_text("old line before following\n")
    service_log.write_text("")
    follower = subprocess.Popen(
        [sys.executable, "-m", "devenv", "logs", "-f", "-n", "0", "--trace", ROOT.split("-")[-1][:8],
         "--level", "info", "--file", str(tmp_path / "devenv.yaml")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in follower.stdout], daemon=True).start()
    try:
        assert "following 2 log(s)" in follower.stderr.readline()  # history read: what comes now is new
        with open(service_log, "a") as handle:
            handle.write(f"[abcd1234] 2026-01-01 00:00:00,000 DEBUG orders noise trace={ROOT}\n")
            handle.write(f"[abcd1234] 2026-01-01 00:00:00,000 INFO orders created trace={OTHER}\n")
            handle.write(f"[abcd1234] 2026-01-01 00:00:00,000 INFO orders created trace={ROOT}\n")
        # The span first: the CLI holds function lines only 1.5 s for it, which a loaded box could
        # exceed between two writes of this test (the hold itself is unit-tested with a fake clock).
        sink = FileSpanSink(tmp_path / ".devenv" / "traces", "lambda")
        sink.record(Span(ROOT, "a" * 16, None, "lambda", "invoke worker", 1.0, 2.0, "ok",
                         {"function": "worker", "request_id": REQ}))
        sink.close()
        with open(function_log, "a") as handle:
            handle.write(f"START RequestId: {REQ} Version: $LATEST\nhandler output\nEND RequestId: {REQ}\n")
        got = [lines.get(timeout=30) for _ in range(4)]
    finally:
        follower.terminate()
        follower.wait(timeout=10)
    short = ROOT.split("-")[-1][:8]
    assert got[0].startswith(f"orders | [{short}]") and "INFO orders created" in got[0]
    assert [line.split("| ", 1)[1] for line in got[1:]] == [
        f"[{short}] START RequestId: {REQ} Version: $LATEST", f"[{short}] handler output", f"[{short}] END RequestId: {REQ}"]
    assert not any("noise" in line or OTHER in line or "old line" in line for line in got)
