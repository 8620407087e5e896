from __future__ import annotations

import pytest

from devenv.observe.trace_context import TraceContext, new_root, new_span_id, root_of

ROOT = "1-5759e988-bd862e3fe1be46a994272793"


def test_parse_reads_root_parent_and_sampled_in_any_order():
    context = TraceContext.parse(f"Sampled=0;Parent=53995c3f42cd8ad8;Root={ROOT}")
    assert context == TraceContext(ROOT, "53995c3f42cd8ad8", sampled=False)


def test_parse_ignores_self_and_unknown_fields():
    context = TraceContext.parse(f"Self=1-67891234-12456789abcdef012345678;Root={ROOT};Lineage=a:1")
    assert context == TraceContext(ROOT, None, True)


@pytest.mark.parametrize("header", [None, "", "Root=nope", "Parent=53995c3f42cd8ad8", "Root=1-5759e988-short"])
def test_parse_without_a_valid_root_is_none(header):
    assert TraceContext.parse(header) is None


def test_header_round_trips_and_child_names_the_new_parent():
    context = TraceContext(ROOT, "53995c3f42cd8ad8")
    assert TraceContext.parse(context.header()) == context
    child = context.child("0123456789abcdef")
    assert child.root == ROOT and child.parent == "0123456789abcdef"
    assert child.header() == f"Root={ROOT};Parent=0123456789abcdef;Sampled=1"


def test_traceparent_carries_the_same_ids_both_ways():
    context = TraceContext(ROOT, "53995c3f42cd8ad8")
    value = context.traceparent()
    assert value == "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
    assert TraceContext.from_traceparent(value) == context


def test_no_traceparent_without_a_parent_and_zero_ids_are_ignored():
    # W3C makes an all-zero parent (or trace) id invalid: a receiver would drop the header.
    assert TraceContext(ROOT).traceparent() is None
    assert TraceContext(ROOT, "0" * 16).traceparent() is None
    assert TraceContext.from_traceparent("00-5759e988bd862e3fe1be46a994272793-0000000000000000-01") is None
    assert TraceContext.from_traceparent("00-00000000000000000000000000000000-53995c3f42cd8ad8-01") is None


def test_from_headers_prefers_the_aws_header_and_falls_back_to_w3c():
    w3c = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
    assert TraceContext.from_headers({"traceparent": w3c}).parent == "53995c3f42cd8ad8"
    other = "1-5759e988-000000000000000000000001"
    assert TraceContext.from_headers({"x-amzn-trace-id": f"Root={other}", "traceparent": w3c}).root == other
    assert TraceContext.from_headers({}) is None


def test_new_ids_have_xray_shapes():
    assert TraceContext.parse(f"Root={new_root(0x5759e988)}").root.startswith("1-5759e988-")
    assert len(new_span_id()) == 16 and new_span_id() != new_span_id()


def test_root_of_accepts_an_id_or_a_header():
    assert root_of(ROOT.upper()) == ROOT
    assert root_of(f"Root={ROOT};Parent=53995c3f42cd8ad8") == ROOT
    assert root_of("junk") is None
