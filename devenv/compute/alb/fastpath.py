"""Pure: the common HTTP/1.1 exchange recognised from its raw bytes, so that the proxy can send
it on without taking it apart header by header.

Most requests between services are one small HTTP/1.1 request without a body in one read, and
one response with a ``Content-Length`` in one read. For those the general path's work (a
Python callback per header, sorting the headers, rendering them again both ways) changes
nothing in the bytes: the request goes to the target as it came plus the load balancer's own
lines (X-Forwarded-*, X-Amzn-Trace-Id), and the response goes to the client as it came. Here
such messages are recognised with a few scans in C (``bytes.find``, one regular expression);
anything else (a body, a header the load balancer reads or drops other than ``Host``,
``Origin``, ``Sec-Fetch-Site`` and ``Connection: keep-alive``, HTTP/1.0, several messages in
one read) is left to the general path.

These functions only say what the bytes look like, reading header lines as CRLF-delimited:
the caller then has httptools (llhttp, strict: a bare CR or LF and obsolete line folding are
errors) read the message whole (``Whole``) before anything is sent, so a message that llhttp
would read otherwise (a header hidden from the scan, a body) goes the general way, and makes
every decision the general path makes (guard, rules, target).
"""

from __future__ import annotations

import re
from typing import Callable

import httptools

# Request headers that keep a request off the fast path, besides the three it reads: the
# hop-by-hop ones and those the load balancer replaces or frames itself (framing._SPECIAL).
_REQUEST_NAMES = re.compile(
    rb"\r\n(host|origin|sec-fetch-site|connection|keep-alive|proxy-connection|te|trailer|transfer-encoding"
    rb"|upgrade|x-forwarded-for|x-forwarded-proto|x-forwarded-port|x-amzn-trace-id|expect|content-length)"
    rb"[ \t]*:([^\r\n]*)")
_RESPONSE_NAMES = re.compile(
    rb"\r\n(content-length|connection|keep-alive|proxy-connection|te|trailer|transfer-encoding|upgrade)"
    rb"[ \t]*:([^\r\n]*)")
# Methods a simple request may have: not CONNECT (a tunnel) nor TRACE (the load balancer's 405).
METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"})
_OWS = b" \t"


def simple_request(data: bytes) -> tuple[bytes, bytes, bytes, bytes | None, bytes | None, bytes] | None:
    """``(method, url, host, origin, sec_fetch_site, head)`` when ``data`` is exactly one
    HTTP/1.1 request without a body whose only headers of the load balancer's concern are one
    ``Host``, at most one ``Origin`` and one ``Sec-Fetch-Site``, and ``Connection:
    keep-alive``; ``head`` is the request line and header lines to send on (a
    ``Connection`` line cut out), without the blank line that ends them. Else None."""
    end = len(data) - 4
    if end < 0 or data.find(b"\r\n\r\n") != end:
        return None
    line_end = data.find(b"\r\n")
    parts = data[:line_end].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1" or parts[0] not in METHODS:
        return None
    host = origin = fetch_site = None
    cuts: list[tuple[int, int]] | None = None
    for match in _REQUEST_NAMES.finditer(data.lower(), line_end):
        name = match[1]
        value = data[match.start(2):match.end(2)].strip(_OWS)
        if name == b"host" and host is None:
            host = value
        elif name == b"origin" and origin is None:
            origin = value
        elif name == b"sec-fetch-site" and fetch_site is None:
            fetch_site = value
        elif name == b"connection" and value.lower() == b"keep-alive":
            cuts = (cuts or []) + [(match.start() + 2, match.end() + 2)]
        else:
            return None
    if not host:
        return None
    head = data[:-2]
    if cuts is not None:
        pieces, at = [], 0
        for start, stop in cuts:
            pieces.append(head[at:start])
            at = stop
        pieces.append(head[at:])
        head = b"".join(pieces)
    return parts[0], parts[1], host, origin, fetch_site, head


def simple_response(data: bytes) -> int | None:
    """The status of the HTTP/1.1 response ``data`` holds whole, when it goes to an HTTP/1.1
    keep-alive client as it came: a final status with a body (not 1xx, 204 or 304), one
    ``Content-Length`` that ends exactly at the end of ``data``, and no hop-by-hop header.
    Else None."""
    if not data.startswith(b"HTTP/1.1 "):
        return None
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    code = data[9:12]
    if not code.isdigit() or data[12:13] not in (b" ", b"\r"):
        return None
    status = int(code)
    if status < 200 or status == 204 or status == 304:
        return None
    length = None
    for match in _RESPONSE_NAMES.finditer(data[:end + 2].lower()):
        value = match[2].strip(_OWS)
        if match[1] != b"content-length" or length is not None or not value.isdigit():
            return None
        length = int(value)
    if length is None or end + 4 + length != len(data):
        return None
    return status


class Whole:
    """One llhttp parser (httptools', strict) that reads whole messages with no callback per
    header: ``reads`` says whether it read one message, exactly and whole."""

    __slots__ = ("done", "parser")

    def __init__(self, parser: Callable[["Whole"], "httptools.HttpRequestParser | httptools.HttpResponseParser"]) -> None:
        self.done = False
        self.parser = parser(self)

    def on_message_complete(self) -> None:
        self.done = True

    def reads(self, data: bytes) -> bool:
        """Whether llhttp reads ``data`` (a ``simple_request`` or ``simple_response``) as one
        whole message. After False the parser is spent: its connection's general parser
        reads from then on."""
        self.done = False
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            return False
        return self.done
