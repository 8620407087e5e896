from __future__ import annotations

import json
import os
import threading

from devenv.observe import spans
from devenv.observe.spans import (
    FileSpanSink,
    Outcome,
    Span,
    SpanTimer,
    find_trace,
    prune,
    read_spans,
    recent_traces,
    sink_from_environment,
    NullSink,
    waterfall,
)
from devenv.observe.trace_context import TraceContext
from tests.support import ListSink

ROOT = "1-5759e988-bd862e3fe1be46a994272793"



def span(span_id, parent, start, ms, component="lambda", outcome=Outcome.OK, trace=ROOT, **attrs):
    return Span(trace, span_id, parent, component, f"op {span_id}", start, ms, outcome, attrs)


def test_span_json_round_trip_and_torn_lines_are_skipped():
    original = span("a" * 16, None, 100.5, 12.25, message_id="m-1")
    assert Span.from_json(original.to_json()) == original
    assert Span.from_json(original.to_json()[:-5]) is None
    assert Span.from_json('{"not": "a span"}') is None


def test_file_sink_appends_and_survives_a_new_writer(tmp_path):
    first = FileSpanSink(tmp_path, "lambda")
    first.record(span("a" * 16, None, 1.0, 1.0))
    first.close()
    with open(first.path, "a") as handle:
        handle.write('{"trace": "torn')  # a writer killed mid-line
    second = FileSpanSink(tmp_path, "emulator")
    second.record(span("b" * 16, "a" * 16, 1.1, 1.0))
    assert {s.span_id for s in read_spans(tmp_path)} == {"a" * 16, "b" * 16}
    assert oct(os.stat(second.path).st_mode & 0o777) == "0o600"


def test_file_sink_records_a_batch_of_spans_in_one_write(tmp_path, monkeypatch):
    sink = FileSpanSink(tmp_path, "xray")
    sink.record(span("0" * 16, None, 1.0, 1.0))  # the file opened
    writes = []
    real_write = os.write
    monkeypatch.setattr(spans.os, "write", lambda fd, data: writes.append(data) or real_write(fd, data))
    batch = [span(f"{n:016x}", "0" * 16, 1.0 + n, 1.0) for n in range(1, 4)]
    sink.record_all(batch)
    sink.record_all([])
    assert len(writes) == 1
    assert [s.span_id for s in read_spans(tmp_path)] == ["0" * 16] + [s.span_id for s in batch]


def test_file_sink_rotates_past_its_limit_and_keeps_both_files(tmp_path):
    sink = FileSpanSink(tmp_path, "lambda", file_limit=600)
    for n in range(10):
        sink.record(span(f"{n:016x}", None, float(n), 1.0))
    assert sink.path.with_suffix(".old").exists()
    kept = sorted(s.start for s in read_spans(tmp_path))
    assert kept[-1] == 9.0 and len(kept) >= 3  # the newest spans: the current file and one rotated
    assert all(p.stat().st_size <= 600 for p in tmp_path.iterdir())


def test_a_rotation_never_closes_the_descriptor_another_thread_writes_to(tmp_path, monkeypatch):
    # Thread A stops inside its write until thread B's record has rotated the file; moto's
    # threads open sockets all the time: here a stranger opens a file the moment B has closed
    # A's descriptor, and gets its number. Without a lock A's span went to the stranger.
    first, small, large = span("0" * 16, None, 0.0, 1.0), span("a" * 16, None, 1.0, 1.0), \
        span("b" * 16, None, 2.0, 1.0, padding="x" * 500)
    sink = FileSpanSink(tmp_path / "traces", "moto",
                        file_limit=len(first.to_json()) + len(small.to_json()) + 10)
    sink.record(first)
    a_writing, rotated, strangers = threading.Event(), threading.Event(), []

    class Interleaved:
        def __getattr__(self, name):
            return getattr(os, name)

        def write(self, fd, data):
            if threading.current_thread().name == "A":
                a_writing.set()
                rotated.wait(0.5)  # with the lock B cannot rotate meanwhile: this times out
            return os.write(fd, data)

        def replace(self, source, target):
            os.replace(source, target)
            strangers.append(os.open(tmp_path / "stranger", os.O_WRONLY | os.O_CREAT | os.O_APPEND))

    def b() -> None:
        assert a_writing.wait(5)
        sink.record(large)
        rotated.set()

    monkeypatch.setattr(spans, "os", Interleaved())
    threads = [threading.Thread(target=sink.record, args=(small,), name="A"), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    monkeypatch.undo()
    sink.close()
    for fd in strangers:
        os.close(fd)
    assert len(strangers) == 1 and (tmp_path / "stranger").read_text() == ""
    assert sorted(s.span_id for s in read_spans(tmp_path / "traces")) == ["0" * 16, "a" * 16, "b" * 16]


def test_prune_deletes_oldest_files_first(tmp_path):
    for n, name in enumerate(["old.jsonl", "mid.jsonl", "new.jsonl"]):
        path = tmp_path / name
        path.write_text("x" * 100)
        os.utime(path, (n, n))
    prune(tmp_path, 250)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mid.jsonl", "new.jsonl"]


def test_sink_from_environment():
    assert isinstance(sink_from_environment("x", {}), NullSink)
    assert isinstance(sink_from_environment("x", {"DEVENV_SPANS_DIR": "/tmp/s"}), FileSpanSink)


def test_timer_records_one_span_with_the_incoming_parent_and_passes_its_own_id():
    sink = ListSink()
    timer = SpanTimer(sink, TraceContext(ROOT, "1111222233334444"), "alb", "GET /x", {"path": "/x"})
    assert timer.context.parent == timer.span_id and timer.context.root == ROOT
    recorded = timer.finish(Outcome.ERROR, status=502)
    timer.finish()
    assert sink.spans == [recorded]
    assert recorded.parent_id == "1111222233334444" and recorded.attributes == {"path": "/x", "status": 502}
    assert recorded.failed and recorded.duration_ms >= 0


def test_timer_without_context_starts_a_trace():
    sink = ListSink()
    SpanTimer(sink, None, "apigateway", "GET /").finish()
    assert sink.spans[0].parent_id is None and TraceContext.parse(f"Root={sink.spans[0].trace_id}")


def test_waterfall_orders_children_under_parents_and_adopts_orphans():
    spans = [
        span("c" * 16, "b" * 16, 10.002, 3),
        span("a" * 16, None, 10.0, 10),
        span("b" * 16, "a" * 16, 10.001, 5),
        span("d" * 16, "f" * 16, 10.0025, 1),  # parent not in the trace: the enclosing span adopts it
        span("e" * 16, "a" * 16, 10.007, 2),
    ]
    rows = waterfall(spans)
    assert [(r.span.span_id[0], r.depth) for r in rows] == [("a", 0), ("b", 1), ("c", 2), ("d", 3), ("e", 1)]
    assert abs(rows[1].offset_ms - 1.0) < 1e-6


def test_recent_traces_and_find_trace():
    other = "1-5759e989-000000000000000000000001"
    spans = [span("a" * 16, None, 1.0, 5, trace=ROOT, message_id="msg-1", message_ids=["msg-7", "msg-8"]),
             span("b" * 16, "a" * 16, 1.002, 1, component="sqs", outcome=Outcome.ERROR, trace=ROOT),
             span("c" * 16, None, 2.0, 1, trace=other)]
    recent = recent_traces(spans)
    assert [t.trace_id for t in recent] == [other, ROOT]
    assert recent[1].errors == 1 and recent[1].spans == 2 and recent[1].components == ("lambda", "sqs")
    assert [t.trace_id for t in recent_traces(spans, errors_only=True)] == [ROOT]
    assert find_trace(spans, f"Root={ROOT};Parent=x")[0] == ROOT
    assert find_trace(spans, "bd862e3f")[0] == ROOT
    assert find_trace(spans, "msg-1")[0] == ROOT
    assert find_trace(spans, "MSG-8")[0] == ROOT  # an element of a list attribute
    assert find_trace(spans, "1-5759e98") is None  # ambiguous
    assert find_trace(spans, "nothing") is None
