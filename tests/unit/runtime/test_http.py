"""devenv's HTTP client against real loopback servers: JSON in and out, and every failure an
EndpointError that names the endpoint (nothing listening, no answer in time, an error status)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devenv.errors import EndpointError, EndpointStatusError, EndpointTimeout, EndpointUnreachable
from devenv.runtime import http


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/fail":
            self._answer(404, b'{"message": "unknown service"}')
        elif self.path == "/plain":
            self._answer(500, b"it broke")
        else:
            self._answer(200, json.dumps({"got": json.loads(body), "type": self.headers["Content-Type"],
                                          "path": self.path}).encode())

    def do_GET(self):
        self._answer(200, b"not json" if self.path == "/text" else b'{"services": []}')

    def _answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serving(handler):
    """A loopback server of ``handler``'s, its URL while the generator runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def server():
    yield from serving(Handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_json_goes_out_and_comes_back(server):
    endpoint = http.Endpoint(server, "the test API")
    assert endpoint.call("POST", "/echo?x=1", {"a": 1}) == {"got": {"a": 1}, "type": "application/json",
                                                          "path": "/echo?x=1"}
    assert endpoint.call("GET", "/services") == {"services": []}


def test_an_error_status_is_an_answer_until_checked_then_names_the_endpoint_and_its_message(server):
    reply = http.request("POST", server + "/fail", json={}, name="the ECS control API")
    assert reply.status == 404 and not reply.ok
    with pytest.raises(EndpointStatusError) as caught:
        reply.checked()
    assert str(caught.value) == "the ECS control API answered 404 to POST /fail: unknown service"
    assert caught.value.status == 404
    with pytest.raises(EndpointStatusError, match="answered 500 to POST /plain: it broke"):
        http.request("POST", server + "/plain", json={}).checked()


def test_a_body_that_is_not_json_is_an_endpoint_error(server):
    with pytest.raises(EndpointError, match="not JSON: not json"):
        http.Endpoint(server, "the test API").call("GET", "/text")


def test_nothing_listening_is_unreachable_with_the_endpoint_and_hint():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EndpointUnreachable) as caught:
        http.Endpoint(url, "the ECS control API", hint="is it running?").call("GET", "/services")
    assert str(caught.value).startswith(f"could not reach the ECS control API at {url}/services: connection refused")
    assert caught.value.hint == "is it running?" and caught.value.exit_code == 10


def test_no_answer_in_time_is_a_timeout():
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/services"
        with pytest.raises(EndpointTimeout, match=rf"{url} did not answer within 0.2 s"):
            http.request("GET", url, timeout=0.2)


def test_a_proxy_in_the_environment_never_takes_devenv_calls(server, monkeypatch):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert http.request("GET", server + "/services").json() == {"services": []}


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/x", "ftp://127.0.0.1/x", "not a url"])
def test_a_bad_url_is_an_endpoint_error_not_a_traceback(url):
    with pytest.raises(EndpointError):
        http.request("GET", url)


# ---------------------------------------------------------------- a kept connection


class KeepAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; ``/hang-up`` answers, then closes without saying so."""

    protocol_version = "HTTP/1.1"
    peers: list[int] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.peers.append(self.client_address[1])
        answer = json.dumps({"got": body.decode(), "host": self.headers["Host"]}).encode()
        self.send_response(400 if self.path == "/bad" else 200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        self.wfile.flush()
        if self.path == "/hang-up":
            self.close_connection = True


@pytest.fixture
def keep_alive():
    KeepAlive.peers = []
    yield from serving(KeepAlive)


def test_a_kept_connection_makes_every_call_on_one_connection(keep_alive):
    connection = http.KeptConnection(keep_alive, name="the test API")
    replies = [connection.request("POST", "/", body=f"{i}".encode()) for i in range(3)]
    assert [json.loads(r.body)["got"] for r in replies] == ["0", "1", "2"]
    assert json.loads(replies[0].body)["host"] == connection.host == keep_alive.removeprefix("http://")
    assert len(KeepAlive.peers) == 3 and len(set(KeepAlive.peers)) == 1
    bad = connection.request("POST", "/bad", body=b"x")  # an error status is an answer, as with request()
    assert bad.status == 400 and len(set(KeepAlive.peers)) == 1
    connection.close()


def test_a_connection_the_server_closed_while_idle_is_opened_again_without_a_failed_call(keep_alive):
    from devenv.health import wait_until

    connection = http.KeptConnection(keep_alive)
    connection.request("POST", "/hang-up", body=b"a")
    kept = connection._connection
    assert kept is not None
    assert wait_until(lambda: http._closed_by_peer(kept), timeout=5)  # the server's FIN has arrived
    assert json.loads(connection.request("POST", "/", body=b"b").body)["got"] == "b"
    assert len(set(KeepAlive.peers)) == 2
    connection.close()


def test_a_kept_connection_fails_as_request_does():
    port = free_port()
    connection = http.KeptConnection(f"http://127.0.0.1:{port}", name="the emulator", timeout=1)
    with pytest.raises(EndpointUnreachable, match=f"could not reach the emulator at http://127.0.0.1:{port}"):
        connection.request("POST", "/", body=b"x")
    with pytest.raises(EndpointError, match="not an http URL"):
        http.KeptConnection("https://127.0.0.1:1")


class FakeSocket:
    """A connected socket's two ends for one test: what was written (each ``sendall``), and
    the server's bytes handed out in the given pieces (then end of file)."""

    def __init__(self, *pieces: bytes):
        self.pieces = list(pieces)
        self.sent: list[bytes] = []
        self.closed = False

    def sendall(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def recv(self, size: int) -> bytes:
        if not self.pieces:
            return b""
        piece = self.pieces.pop(0)
        if len(piece) > size:
            self.pieces.insert(0, piece[size:])
            piece = piece[:size]
        return piece

    def fileno(self) -> int:
        return -1

    def setsockopt(self, *option) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def over(monkeypatch, *sockets: FakeSocket) -> http.KeptConnection:
    """A KeptConnection whose connections are ``sockets``, in turn; never found closed while idle."""
    made = list(sockets)
    monkeypatch.setattr(http.socket, "create_connection", lambda address, timeout: made.pop(0))
    monkeypatch.setattr(http, "_closed_by_peer", lambda sock: False)
    return http.KeptConnection("http://127.0.0.1:4566", name="the emulator")


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\": true}"


def test_a_kept_connection_writes_head_and_body_in_one_piece(monkeypatch):
    """http.client wrote them apart: the server woke for the head, then for the body."""
    sock = FakeSocket(OK)
    connection = over(monkeypatch, sock)
    reply = connection.request("POST", "/TraceSegments", body=b'{"x":1}', headers={"Content-Type": "application/json"})
    assert (reply.status, reply.json(), reply.header("content-type")) == (200, {"a": True}, "application/json")
    assert len(sock.sent) == 1
    head, _, body = sock.sent[0].partition(b"\r\n\r\n")
    assert body == b'{"x":1}'
    assert head.split(b"\r\n") == [b"POST /TraceSegments HTTP/1.1", b"Host: 127.0.0.1:4566",
                                     b"Accept-Encoding: identity", b"Content-Length: 7",
                                     b"Content-Type: application/json"]


@pytest.mark.parametrize("pieces, body", [
    ([OK[:5], OK[5:40], OK[40:-3], OK[-3:]], b'{"a": true}'),  # the answer in any pieces
    ([b"HTTP/1.1 100 Continue\r\n\r\n", OK], b'{"a": true}'),  # an interim answer skipped
    ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\n{\"a\"\r\n", b"3\r\n: 1\r\n1\r\n}\r\n",
      b"0\r\nTrailer: t\r\n\r\n"], b'{"a": 1}'),
    ([b"HTTP/1.1 204 No Content\r\n\r\n"], b""),
])
def test_a_kept_connection_reads_every_shape_of_answer_and_keeps_the_connection(monkeypatch, pieces, body):
    sock = FakeSocket(*pieces, OK)
    connection = over(monkeypatch, sock)
    assert connection.request("POST", "/", body=b"1").body == body
    assert connection.request("POST", "/", body=b"2").body == b'{"a": true}'  # the same connection
    assert len(sock.sent) == 2 and not sock.closed


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\n\r\nok",  # no length: the body ends with the connection
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok!",  # more than the answer: not to be trusted
])
def test_an_answer_that_ends_the_connection_opens_a_new_one_for_the_next_call(monkeypatch, answer):
    first, second = FakeSocket(answer), FakeSocket(OK)
    connection = over(monkeypatch, first, second)
    assert connection.request("POST", "/", body=b"1").body == b"ok"
    assert first.closed
    assert connection.request("POST", "/", body=b"2").json() == {"a": True}
    assert second.sent and not second.closed


@pytest.mark.parametrize("pieces, why", [
    ([], "closed without an answer"),
    ([b"HTTP/1.1 200 OK\r\nContent-Len"], "closed inside an answer's head"),
    ([b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"], "closed inside an answer's body"),
    ([b"SSH-2.0-OpenSSH\r\n\r\n"], "not an HTTP answer"),
    ([b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"], "a header without a colon"),
    ([b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"], "not a number"),
    ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"], "not hexadecimal"),
    ([b"HTTP/1.1 200 OK\r\nX: " + b"y" * (http.MAX_HEAD + 10)], "head longer than"),
])
def test_a_broken_answer_is_endpoint_unreachable_and_drops_the_connection(monkeypatch, pieces, why):
    sock = FakeSocket(*pieces)
    connection = over(monkeypatch, sock)
    with pytest.raises(EndpointUnreachable, match=f"could not reach the emulator at http://127.0.0.1:4566: .*{why}"):
        connection.request("POST", "/", body=b"x")
    assert sock.closed and connection._connection is None


def test_a_kept_connection_without_an_answer_in_time_is_endpoint_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        connection = http.KeptConnection(f"http://127.0.0.1:{listener.getsockname()[1]}", name="the emulator",
                                         timeout=0.2)
        with pytest.raises(EndpointTimeout, match="the emulator at .* did not answer within 0.2 s"):
            connection.request("POST", "/", body=b"x")
        assert connection._connection is None
    finally:
        listener.close()
