"""CloudFront's headers both ways and its own error pages."""

from __future__ import annotations

import re

from devenv.edge.headers import CacheOutcome, error_page, METHOD_NOT_ALLOWED, origin_request, request_id, stored, \
    viewer_response

EDGE = "0123456789abcdef0123456789abcdef"


def names(headers) -> list[str]:
    return [k.lower() for k, _ in headers]


def test_the_origin_gets_every_viewer_header_but_host_and_hop_by_hop_ones():
    viewer = [("Host", "nedlia.localhost:8443"), ("Connection", "keep-alive, X-Private"), ("X-Private", "1"),
              ("Keep-Alive", "timeout=5"), ("Content-Length", "2"), ("Authorization", "Bearer t"),
              ("Content-Type", "application/json"), ("Cookie", "a=1"), ("X-Forwarded-For", "10.0.0.1")]
    out = dict(origin_request(viewer, client_ip="127.0.0.1", cf_id="id-1", edge_id=EDGE))
    assert set(names(out.items())) == {"authorization", "content-type", "cookie", "x-forwarded-for", "via",
                                       "x-amz-cf-id", "cloudfront-forwarded-proto"}
    assert out["X-Forwarded-For"] == "10.0.0.1, 127.0.0.1"
    assert out["Via"] == f"1.1 {EDGE}.cloudfront.net (CloudFront)"
    assert out["X-Amz-Cf-Id"] == "id-1" and out["CloudFront-Forwarded-Proto"] == "https"


def test_a_stale_entrys_validators_replace_the_viewers_conditions():
    viewer = [("If-None-Match", '"theirs"'), ("Accept", "application/json")]
    out = origin_request(viewer, client_ip="127.0.0.1", cf_id="i", edge_id=EDGE,
                         conditional={"If-None-Match": '"ours"'})
    assert ("If-None-Match", '"ours"') in out and ("If-None-Match", '"theirs"') not in out
    plain = origin_request(viewer, client_ip="127.0.0.1", cf_id="i", edge_id=EDGE)
    assert ("If-None-Match", '"theirs"') in plain


def test_the_viewer_gets_cloudfronts_headers_and_age_on_a_hit():
    origin = [("Content-Type", "application/json"), ("Content-Length", "10"), ("Transfer-Encoding", "chunked"),
              ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Via", "1.1 origin"), ("Age", "99")]
    out = viewer_response(origin, CacheOutcome.HIT, cf_id="id-2", edge_id=EDGE, age=7)
    assert names(out) == ["content-type", "set-cookie", "set-cookie", "age", "x-cache", "via", "x-amz-cf-pop",
                          "x-amz-cf-id"]
    assert dict(out)["X-Cache"] == "Hit from cloudfront" and dict(out)["Age"] == "7"
    miss = dict(viewer_response(origin, CacheOutcome.MISS, cf_id="id-3", edge_id=EDGE))
    assert miss["X-Cache"] == "Miss from cloudfront" and "Age" not in miss
    assert re.fullmatch(r"[A-Z]{3}\d+-[A-Z0-9]+", miss["X-Amz-Cf-Pop"])


def test_entries_keep_end_to_end_headers_only():
    assert stored([("Connection", "close"), ("Content-Length", "3"), ("ETag", '"1"')]) == [("ETag", '"1"')]


def test_request_ids_look_like_cloudfronts():
    cf_id = request_id(bytes(range(42)))
    assert len(cf_id) == 56 and re.fullmatch(r"[A-Za-z0-9_=-]+", cf_id)


def test_its_own_error_page():
    status, headers, body = error_page(METHOD_NOT_ALLOWED, cf_id="id-4", edge_id=EDGE)
    assert status == 403 and dict(headers)["X-Cache"] == "Error from cloudfront"
    assert dict(headers)["Server"] == "CloudFront"
    assert b"403 ERROR" in body and b"id-4" in body
