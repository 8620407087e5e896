from __future__ import annotations

from devenv.observe.logs import LogAnnotator, LogFilter, LogFollower, LogLine, LogStream, level_of
from devenv.observe.span_index import SpanIndex

from .conftest import ROOT_A, ROOT_B, span, write

REQ = "6c943dc9-7f7d-4473-8ffb-654f74a6f106"
OTHER = "aa6bb56e-c343-402f-aa60-2c81b59b9348"


def test_levels_stated_in_the_usual_forms():
    assert level_of("[0cb99d0e] 2026-11-27 00:50:26,218 INFO nedlia.validation placement x") == "info"
    assert level_of('{"level": "error", "message": "record failed"}') == "error"
    assert level_of("[WARNING]\t2026-11-27T00:00:00Z\t" + REQ + "\tslow") == "warning"
    assert level_of("2026-11-27 00:48:46.553 UTC [21185] FATAL:  the database system is starting up") == "error"
    assert level_of(f"{REQ} Error: Task timed out after 5.00 seconds") == "error"
    assert level_of(f"START RequestId: {REQ} Version: $LATEST") is None


def test_function_lines_get_the_trace_of_their_invocation():
    traces = {REQ: ROOT_A}
    annotate = LogAnnotator(traces.get)
    lines = [f"START RequestId: {REQ} Version: $LATEST", "plain output of the handler",
             f"[ERROR]\t2026-11-27T00:00:00Z\t{REQ}\tboom", "Traceback (most recent call last):",
             '  File "app.py", line 3, in handler', f"END RequestId: {REQ}", f"REPORT RequestId: {REQ}\tDuration: 1 ms",
             "output after the invocation"]
    got = [annotate.annotate("fn", text, annotate.request_of("fn", text)) for text in lines]
    assert [g.trace_id for g in got] == [ROOT_A] * 7 + [None]
    assert [g.level for g in got] == ["info", "info", "error", "error", "error", "info", "info", "info"]


def test_output_between_two_open_invocations_is_not_guessed_and_a_stated_trace_wins():
    annotate = LogAnnotator({REQ: ROOT_A}.get)
    for text in (f"START RequestId: {REQ} Version: $LATEST", f"START RequestId: {OTHER} Version: $LATEST"):
        annotate.request_of("fn", text)
    assert annotate.request_of("fn", "who wrote this?") is None
    line = annotate.annotate("svc", f"[ab] INFO placement created trace={ROOT_B}")
    assert line.trace_id == ROOT_B
    # a line of OTHER that states its trace teaches the mapping for its later lines
    annotate.annotate("fn", f"[INFO]\tt\t{OTHER}\tcalled trace={ROOT_B}", OTHER)
    assert annotate.annotate("fn", f"END RequestId: {OTHER}", OTHER).trace_id == ROOT_B


def test_filter_by_source_level_and_trace_prefix():
    line = LogLine("api", "x", "warning", ROOT_A)
    assert LogFilter()(line)
    assert LogFilter(sources=frozenset({"api"}), level="warning", trace=ROOT_A.split("-")[-1][:6])(line)
    assert LogFilter(trace=f"Root={ROOT_A};Parent=1111222233334444")(line)
    assert not LogFilter(level="error")(line)
    assert not LogFilter(trace=ROOT_B)(line)
    assert not LogFilter(trace=ROOT_A)(LogLine("api", "x", "info", None))
    assert not LogFilter(sources=frozenset({"worker"}))(line)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_following_holds_invocation_lines_until_the_lambda_span_arrives(tmp_path):
    log = tmp_path / "fn.log"
    other = tmp_path / "svc.log"
    log.write_text("")
    other.write_text("")
    spans = tmp_path / "traces"
    clock = Clock()
    stream = LogStream(LogFollower({"fn": log, "svc": other}), SpanIndex(spans), hold=1.0, clock=clock,
                       refresh_every=0.0)
    assert stream.history(10) == []
    with open(log, "a") as handle:
        handle.write(f"START RequestId: {REQ} Version: $LATEST\nworking\n")
    with open(other, "a") as handle:
        handle.write("unrelated\n")
    assert [line.text for line in stream.poll()] == ["unrelated"]  # fn waits for its span
    write(spans, [span(ROOT_A, "a" * 16, None, 1.0, 5.0, "lambda", "invoke fn", function="fn", request_id=REQ)])
    clock.now = 0.3
    got = stream.poll()
    assert [(line.text, line.trace_id) for line in got] == [(f"START RequestId: {REQ} Version: $LATEST", ROOT_A),
                                                            ("working", ROOT_A)]


def test_following_shows_a_line_without_trace_once_the_hold_is_over(tmp_path):
    log = tmp_path / "fn.log"
    log.write_text("")
    clock = Clock()
    stream = LogStream(LogFollower({"fn": log}), SpanIndex(tmp_path / "none"), hold=1.0, clock=clock)
    stream.history(10)
    with open(log, "a") as handle:
        handle.write(f"START RequestId: {REQ} Version: $LATEST\n")
    assert stream.poll() == []
    clock.now = 1.5
    [line] = stream.poll()
    assert line.trace_id is None and line.request_id == REQ


def test_following_without_spans_tracing_off_holds_nothing(tmp_path):
    log = tmp_path / "fn.log"
    log.write_text("")
    stream = LogStream(LogFollower({"fn": log}), None, hold=1.0, clock=Clock())
    stream.history(10)
    with open(log, "a") as handle:
        handle.write(f"START RequestId: {REQ} Version: $LATEST\n")
    [line] = stream.poll()  # at once: no span will ever tell its trace
    assert line.trace_id is None and line.request_id == REQ


def test_span_index_reads_only_what_was_appended_and_survives_rotation(tmp_path):
    index = SpanIndex(tmp_path)
    assert index.refresh() == []
    write(tmp_path, [span(ROOT_A, "a" * 16, None, 1.0, 1.0, "lambda", "invoke", request_id=REQ)])
    assert [s.span_id for s in index.refresh()] == ["a" * 16]
    assert index.refresh() == []
    assert index.trace_of_request(REQ.upper()) == ROOT_A
    [path] = list(tmp_path.iterdir())
    with open(path, "a") as handle:
        handle.write('{"trace": "torn')
    assert index.refresh() == []
    path.write_text(span(ROOT_B, "b" * 16, None, 2.0, 1.0, "sqs", "queue").to_json() + "\n")  # replaced, shorter
    assert [s.span_id for s in index.refresh()] == ["b" * 16]
    assert {s.span_id for s in index.spans} == {"a" * 16, "b" * 16}


def test_span_index_keeps_the_newest_spans_within_its_capacity(tmp_path):
    write(tmp_path, [span(ROOT_A, f"{n:016x}", None, float(n), 1.0, "lambda", "invoke", request_id=f"r{n}")
                     for n in range(5)])
    index = SpanIndex(tmp_path, capacity=3)
    index.refresh()
    assert [s.start for s in index.spans] == [2.0, 3.0, 4.0]
    assert index.trace_of_request("r0") is None and index.trace_of_request("r4") == ROOT_A


def test_span_index_over_capacity_keeps_the_newest_files_spans_whatever_their_names(tmp_path):
    """Files are read oldest first, so the spans kept are the newest: here the ecs file's,
    written after the lambda file (by name, lambda-* would be read last and kept)."""
    import os

    write(tmp_path, [span(ROOT_A, f"{n:016x}", None, float(n), 1.0, "lambda", "invoke") for n in range(3)],
          name="lambda")
    write(tmp_path, [span(ROOT_B, f"{n + 10:016x}", None, 100.0 + n, 1.0, "ecs", "task") for n in range(3)],
          name="ecs")
    [lambda_file] = tmp_path.glob("lambda-*")
    [ecs_file] = tmp_path.glob("ecs-*")
    os.utime(lambda_file, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    os.utime(ecs_file, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))  # written last
    index = SpanIndex(tmp_path, capacity=3)
    index.refresh()
    assert {s.component for s in index.spans} == {"ecs"}
