from __future__ import annotations

from devenv.observe.trace_view import bars, cells, details, trace_json

from .conftest import ROOT_A, ROOT_B, lifecycle, span


def test_bars_follow_the_call_tree_and_scale_to_the_trace():
    spans = lifecycle(ROOT_A, 1000.0)
    rows = bars(spans)
    assert [r.span.component for r in rows] == ["apigateway", "lambda", "alb", "eventbridge", "event-source",
                                                "lambda"]
    assert [r.depth for r in rows] == [0, 1, 2, 3, 4, 5]
    assert rows[0].start == 0.0
    worker = rows[-1]
    assert 0.8 < worker.start < 0.9 and worker.start + worker.width <= 1.0


def test_cells_give_even_a_tiny_span_one_cell_inside_the_track():
    rows = bars(lifecycle(ROOT_A, 1000.0))
    for row in rows:
        first, length = cells(row, 40)
        assert 0 <= first < 40 and length >= 1 and first + length <= 40
    assert cells(rows[0], 40) == (0, 20)  # 120 ms of a 236 ms trace


def test_details_show_known_attributes_first_and_skip_empty_ones():
    s = span(ROOT_A, "a" * 16, None, 1.0, 1.0, "sqs", "SendMessage work", zeta="z", queue="work", message_id="",
             targets=["q1", "q2"])
    assert details(s) == [("targets", "q1,q2"), ("queue", "work"), ("zeta", "z")]


def test_trace_json_marks_failed_rows():
    data = trace_json(ROOT_B, lifecycle(ROOT_B, 5.0, fail_worker=True))
    assert data["errors"] == 1
    assert [r["outcome"] for r in data["rows"]][-1] == "error"
    assert data["rows"][1]["parent"] == data["rows"][0]["id"]
