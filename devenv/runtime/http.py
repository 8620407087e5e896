"""devenv's one HTTP client (the CLI's calls to the ECS control API, readiness probes, the
test and tour clients of API Gateway, the OTLP export, the awslogs shipper's calls): JSON
in and out, one timeout convention, one error convention.

- Timeout: ``timeout`` seconds bound the connection and each read (``TIMEOUT``, 5 s, unless
  the caller knows its endpoint needs longer).
- Errors are ``errors.EndpointError``s naming the endpoint: nothing listening, reset or an
  unknown name is ``EndpointUnreachable``, no answer in time ``EndpointTimeout``. Any answer
  comes back as a ``Reply``; ``Reply.checked()`` turns a status >= 400 into
  ``EndpointStatusError`` carrying the answer's own message (``message``, ``Message`` or
  ``errorMessage`` of a JSON body).
- Plain ``http.client``: no proxy (urllib would send loopback calls through a developer's
  ``HTTP_PROXY``), no redirects followed, headers as the server sent them.
- HTTPS trusts the system's CAs, or only ``ca_file`` when given (the edge's CA); a name under
  ``.localhost`` is reached on 127.0.0.1 (RFC 6761, as browsers and curl do) and verified
  under its own name, since not every resolver knows it.
- ``request`` opens a connection per call; a ``KeptConnection`` keeps one open for the calls
  of one thread (a background sender's), opening a new one when the server has closed it.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import select
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from devenv.errors import EndpointError, EndpointStatusError, EndpointTimeout, EndpointUnreachable

TIMEOUT = 5.0
_NOTHING: Any = object()


@dataclass(frozen=True)
class Reply:
    """An answer, whatever its status."""

    status: int
    headers: dict[str, str]
    body: bytes
    method: str = "GET"
    url: str = ""
    name: str = ""
    hint: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status < 400

    def header(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), default)

    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        """The body as JSON (None when empty); a body that is not JSON is an EndpointError."""
        if not self.body:
            return None
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            raise EndpointError(f"{self.name} answered {self.method} {_path(self.url)} with a body that is not "
                                f"JSON: {_short(self.text())}", url=self.url, hint=self.hint) from None

    def checked(self) -> Reply:
        """This reply, or EndpointStatusError when its status is an error."""
        if self.ok:
            return self
        raise EndpointStatusError(f"{self.name} answered {self.status} to {self.method} {_path(self.url)}: "
                                  f"{message_of(self.body) or http.client.responses.get(self.status, 'error')}",
                                  url=self.url, status=self.status, body=self.body, hint=self.hint)


def message_of(body: bytes) -> str | None:
    """The message of an error body: a JSON object's ``message``/``Message``/``errorMessage``,
    else the text itself (short), else None."""
    try:
        data = jsonlib.loads(body)
    except ValueError:
        text = body.decode(errors="replace").strip()
        return _short(text) if text else None
    if isinstance(data, dict):
        for key in ("message", "Message", "errorMessage"):
            if isinstance(data.get(key), str):
                return data[key]
    return _short(body.decode(errors="replace"))


def request(method: str, url: str, *, json: Any = _NOTHING, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = TIMEOUT, name: str | None = None,
            hint: str | None = None, ca_file: str | None = None) -> Reply:
    """One call: ``json`` (serialised, Content-Type application/json) or raw ``body``.
    ``name`` says what the endpoint is in messages ("the ECS control API"; default its URL)."""
    parts = urlsplit(url)
    where = f"{name} at {url}" if name else url
    name = name or f"{parts.scheme}://{parts.netloc}"
    sent = dict(headers or {})
    if json is not _NOTHING:
        body = jsonlib.dumps(json).encode()
        sent.setdefault("Content-Type", "application/json")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(f"{where}: not an http(s) URL", url=url, hint=hint)
    try:
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=ca_file) if ca_file else None
            connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context)
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    except ValueError as exc:  # a port out of range or not a number
        raise EndpointError(f"{where}: not a valid URL ({exc})", url=url, hint=hint) from None
    if parts.hostname.endswith(".localhost"):
        connection._create_connection = _on_loopback  # type: ignore[attr-defined]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        return _exchange(connection, method, target, body, sent, url, name, hint, where, timeout)[0]
    finally:
        connection.close()


def _exchange(connection: http.client.HTTPConnection, method: str, target: str, body: bytes | None,
              headers: dict[str, str], url: str, name: str, hint: str | None, where: str,
              timeout: float) -> tuple[Reply, bool]:
    """One request and its answer on ``connection``; whether the server will close it."""
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return Reply(response.status, dict(response.getheaders()), data, method, url, name, hint), response.will_close
    except (socket.timeout, TimeoutError):
        raise EndpointTimeout(f"{where} did not answer within {timeout:g} s", url=url, hint=hint) from None
    except (OSError, http.client.HTTPException) as exc:
        raise EndpointUnreachable(f"could not reach {where}: {_reason(exc)}", url=url, hint=hint) from None


class KeptConnection:
    """Calls to one plain-HTTP endpoint over one kept-alive connection, with ``request``'s
    timeout and errors; for one thread at a time (a background sender's). Opened on first
    use, and again after a failed call, an answer that closes it, or when the server has
    closed it while idle (seen before reuse, as urllib3 does: a call is never sent twice).

    HTTP/1.1 spoken on the socket (``_Answer``), not through ``http.client``: a sender calls
    every second from the process serving requests, and http.client cost ~0.25 ms of CPU a
    call (its headers parsed by the email package) and wrote the body apart from the head,
    so the server woke twice for each call."""

    def __init__(self, url: str, *, name: str | None = None, timeout: float = TIMEOUT, hint: str | None = None):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise EndpointError(f"{url}: not an http URL", url=url, hint=hint)
        self.url = url.rstrip("/")
        self.host = parts.netloc  # host[:port], as the Host header carries it
        self._address = (parts.hostname, parts.port or 80)
        self._base = parts.path.rstrip("/")
        self._name = name or f"http://{parts.netloc}"
        self._where = f"{name} at {url}" if name else url
        self._timeout = timeout
        self._hint = hint
        self._connection: socket.socket | None = None

    def request(self, method: str, path: str = "/", *, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        connection = self._connection
        if connection is not None and _closed_by_peer(connection):
            self.close()
            connection = None
        target, url = self._base + path, self.url + path
        try:
            if connection is None:
                connection = self._connection = socket.create_connection(self._address, timeout=self._timeout)
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does
            connection.sendall(_request_bytes(method, target, self.host, body, headers or {}))
            answer = _Answer.read(connection, method)
        except BaseException as exc:
            self.close()
            if isinstance(exc, (socket.timeout, TimeoutError)):
                raise EndpointTimeout(f"{self._where} did not answer within {self._timeout:g} s", url=url,
                                      hint=self._hint) from None
            if isinstance(exc, (OSError, BadAnswer)):
                raise EndpointUnreachable(f"could not reach {self._where}: {_reason(exc)}", url=url,
                                          hint=self._hint) from None
            raise
        if answer.closing:
            self.close()
        return Reply(answer.status, answer.headers, answer.body, method, url, self._name, self._hint)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class BadAnswer(Exception):
    """What came back is not an HTTP/1.x answer (or the connection ended inside one)."""


MAX_HEAD = 65536  # bytes of status line and headers, as http.client allows per line


def _request_bytes(method: str, target: str, host: str, body: bytes | None, headers: dict[str, str]) -> bytes:
    """The request as one write: head and body together (as http.client sends it: Host,
    Accept-Encoding identity, a Content-Length for a body or a POST, then the caller's)."""
    lowered = {k.lower() for k in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in lowered:
        lines.append(f"Host: {host}")
    if "accept-encoding" not in lowered:
        lines.append("Accept-Encoding: identity")
    if "content-length" not in lowered and (body is not None or method in ("POST", "PUT", "PATCH")):
        lines.append(f"Content-Length: {len(body or b'')}")
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class _Answer:
    """One HTTP/1.x answer read off a socket: status, headers (the last of a repeated name, as
    ``request`` keeps them), the body (by Content-Length, chunked, or up to the end of the
    connection), and whether the connection closes after it. Interim (1xx) answers are skipped."""

    __slots__ = ("status", "headers", "body", "closing")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, closing: bool):
        self.status, self.headers, self.body, self.closing = status, headers, body, closing

    @classmethod
    def read(cls, sock: socket.socket, method: str) -> "_Answer":
        buffer = bytearray()
        while True:
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                if len(buffer) > MAX_HEAD:
                    raise BadAnswer(f"an answer's head longer than {MAX_HEAD} bytes")
                chunk = sock.recv(65536)
                if not chunk:
                    raise BadAnswer("the connection closed without an answer" if not buffer
                                    else "the connection closed inside an answer's head")
                buffer += chunk
                end = buffer.find(b"\r\n\r\n")
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[:end + 4]
            status_line, *fields = head.split("\r\n")
            version, _, rest = status_line.partition(" ")
            code = rest[:3]
            if not (version.startswith("HTTP/1.") and code.isdigit()):
                raise BadAnswer(f"not an HTTP answer: {status_line[:80]!r}")
            status = int(code)
            headers: dict[str, str] = {}
            for field in fields:
                name, colon, value = field.partition(":")
                if not colon:
                    raise BadAnswer(f"a header without a colon: {field[:80]!r}")
                headers[name.strip()] = value.strip()
            if 100 <= status < 200 and status != 101:
                continue  # an interim answer: the final one follows
            break
        lowered = {k.lower(): v for k, v in headers.items()}
        connection = lowered.get("connection", "").lower()
        closing = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in lowered.get("transfer-encoding", "").lower():
            body = _chunked(sock, buffer)
        elif "content-length" in lowered:
            try:
                length = int(lowered["content-length"])
            except ValueError:
                raise BadAnswer(f"a Content-Length that is not a number: {lowered['content-length']!r}") from None
            body = _exactly(sock, buffer, length)
        else:  # the body ends with the connection
            while chunk := sock.recv(65536):
                buffer += chunk
            body, closing = bytes(buffer), True
            buffer.clear()
        if buffer:  # bytes past the answer: nothing a later call could trust
            closing = True
        return cls(status, headers, body, closing)


def _exactly(sock: socket.socket, buffer: bytearray, length: int) -> bytes:
    """``length`` bytes from ``buffer`` and then the socket (what is left stays in ``buffer``)."""
    while len(buffer) < length:
        chunk = sock.recv(max(65536, length - len(buffer)))
        if not chunk:
            raise BadAnswer("the connection closed inside an answer's body")
        buffer += chunk
    data = bytes(buffer[:length])
    del buffer[:length]
    return data


def _line(sock: socket.socket, buffer: bytearray) -> bytes:
    while (end := buffer.find(b"\r\n")) < 0:
        if len(buffer) > MAX_HEAD:
            raise BadAnswer("a chunked body's line is too long")
        chunk = sock.recv(65536)
        if not chunk:
            raise BadAnswer("the connection closed inside a chunked body")
        buffer += chunk
    line = bytes(buffer[:end])
    del buffer[:end + 2]
    return line


def _chunked(sock: socket.socket, buffer: bytearray) -> bytes:
    parts = []
    while True:
        size_field = _line(sock, buffer).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise BadAnswer(f"a chunk size that is not hexadecimal: {size_field[:20]!r}") from None
        if size == 0:
            while _line(sock, buffer):  # trailers, up to the empty line
                pass
            return b"".join(parts)
        parts.append(_exactly(sock, buffer, size + 2)[:-2])


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether an idle kept connection has been closed (or reset) by the server: readable
    with nothing owed to us means end of file."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _on_loopback(address: tuple[str, int], *args, **kwargs) -> socket.socket:
    return socket.create_connection(("127.0.0.1", address[1]), *args, **kwargs)


@dataclass(frozen=True)
class Endpoint:
    """A base URL and what it is, for the calls of one client."""

    url: str
    name: str = ""
    timeout: float = TIMEOUT
    hint: str | None = None
    ca_file: str | None = None  # HTTPS: trust only this CA (the edge's)

    def request(self, method: str, path: str = "", *, json: Any = _NOTHING, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float | None = None) -> Reply:
        return request(method, self.url.rstrip("/") + path, json=json, body=body, headers=headers,
                       timeout=self.timeout if timeout is None else timeout, name=self.name or None, hint=self.hint,
                       ca_file=self.ca_file)

    def call(self, method: str, path: str = "", json: Any = _NOTHING) -> Any:
        """The JSON answer of a call that must succeed."""
        return self.request(method, path, json=json).checked().json()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the connection closed without an answer"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
