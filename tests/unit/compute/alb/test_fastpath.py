"""The fast path's recognisers: which raw requests and responses may pass without being taken
apart, and every shape that must go the general way instead (a body, framing or hop-by-hop
headers, headers the load balancer rewrites, smuggling shapes llhttp might read otherwise)."""

from __future__ import annotations

import httptools
import pytest

from devenv.compute.alb.fastpath import Whole, simple_request, simple_response

PLAIN = b"GET /orders?id=7 HTTP/1.1\r\nHost: svc.internal\r\nAccept: */*\r\nUser-Agent: t\r\n\r\n"


def test_a_plain_request_passes_with_its_head_as_it_came():
    assert simple_request(PLAIN) == (b"GET", b"/orders?id=7", b"svc.internal", None, None,
                                     b"GET /orders?id=7 HTTP/1.1\r\nHost: svc.internal\r\nAccept: */*\r\nUser-Agent: t\r\n")


def test_origin_and_sec_fetch_site_are_read_and_kept_and_connection_keep_alive_is_cut():
    data = (b"POST /x HTTP/1.1\r\nconnection: Keep-Alive\r\nHOST:  a.b:8080 \r\nOrigin: http://a.b:8080\r\n"
            b"Sec-Fetch-Site: same-origin\r\nX-Other: 1\r\nConnection: keep-alive\r\n\r\n")
    method, url, host, origin, site, head = simple_request(data)  # type: ignore[misc]
    assert (method, url, host, origin, site) == (b"POST", b"/x", b"a.b:8080", b"http://a.b:8080", b"same-origin")
    assert head == (b"POST /x HTTP/1.1\r\nHOST:  a.b:8080 \r\nOrigin: http://a.b:8080\r\n"
                    b"Sec-Fetch-Site: same-origin\r\nX-Other: 1\r\n")


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",  # framing: the general path decides
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",  # a body
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  # two requests in one read
    b"GET / HTTP/1.1\r\nHost: a\r\n",  # not the whole head yet
    b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",  # HTTP/1.0: keep-alive and framing differ
    b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",  # no Host: the target's address is sent as Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # the first Host wins, on the general path
    b"GET / HTTP/1.1\r\nHost: a\r\nOrigin: x\r\nOrigin: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive: timeout=5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",  # appended to, on the general path
    b"GET / HTTP/1.1\r\nHost: a\r\nx-forwarded-proto: https\r\n\r\n",  # replaced
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Port: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Amzn-Trace-Id: Root=1-5f84c7a6-0123456789abcdef01234567\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
])
def test_anything_else_goes_the_general_way(data):
    assert simple_request(data) is None


def test_header_names_that_merely_start_like_a_special_one_pass():
    data = b"GET / HTTP/1.1\r\nHost: a\r\nHosting: b\r\nX-Forwarded-Host: c\r\nTEA: d\r\n\r\n"
    assert simple_request(data) is not None


RESPONSE = b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\ncontent-length: 5\r\nSet-Cookie: a=b\r\n\r\nhello"


def test_a_whole_response_with_its_length_passes():
    assert simple_response(RESPONSE) == 201
    assert simple_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") == 404
    assert simple_response(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n") == 200  # no reason phrase


@pytest.mark.parametrize("data", [
    RESPONSE[:-1],  # the body is not all here
    RESPONSE + b"HTTP/1.1 200 OK\r\n",  # more than the response
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello",  # ends when the target closes
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",  # rewritten as HTTP/1.1 on the general path
    b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
])
def test_any_other_response_goes_the_general_way(data):
    assert simple_response(data) is None


def test_whole_says_when_llhttp_has_read_one_whole_message():
    whole = Whole(httptools.HttpRequestParser)
    assert whole.reads(PLAIN) and whole.reads(PLAIN)
    assert not whole.reads(b"GET / HTTP/1.1\r\nHost: a\r\n")  # the next message, not whole yet
    assert not Whole(httptools.HttpRequestParser).reads(b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\n")
    assert Whole(httptools.HttpResponseParser).reads(RESPONSE)


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: a\nContent-Length: 5\r\n\r\n",  # a bare LF: smuggling's favourite
    b"GET / HTTP/1.1\r\nHost: a\rTransfer-Encoding: chunked\r\n\r\n",  # a bare CR
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n",  # obsolete folding
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
])
def test_llhttp_refuses_the_shapes_the_scan_does_not_look_for(data):
    """The scan reads lines as CRLF-delimited; what it might misread, llhttp refuses, and the
    fast path sends nothing that llhttp has not read whole."""
    assert not Whole(httptools.HttpRequestParser).reads(data)


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n Transfer-Encoding: chunked\r\n\r\nhello",
])
def test_llhttp_refuses_such_responses_too(data):
    assert not Whole(httptools.HttpResponseParser).reads(data)
