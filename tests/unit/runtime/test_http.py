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


@pytest.fixture
def server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


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
