"""Which requests devenv's control endpoints refuse: DNS-rebinding hosts and cross-site pages;
what local programs send (boto3, the CLI, curl, containers) passes."""

import pytest

from devenv.runtime.guard import refusal


@pytest.mark.parametrize("headers", [
    {"host": "127.0.0.1:4566"},
    {"host": "localhost:8080"},
    {"host": "[::1]:9000"},
    {"host": "devenv.localhost"},
    {"host": "host.docker.internal:41000"},  # a container on the docker runtime
    {"host": "172.18.0.1:41000"},  # the stack network's gateway, by address
    {},  # HTTP/1.0 without Host
    {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000", "sec-fetch-site": "same-origin"},  # the dashboard
    {"host": "127.0.0.1:8000", "origin": "http://localhost:3000"},  # a local dev page
])
def test_local_programs_and_pages_pass(headers):
    assert refusal(headers) is None


@pytest.mark.parametrize("headers, why", [
    ({"host": "evil.example:4566"}, "DNS-rebinding"),
    ({"host": "127.0.0.1.nip.io"}, "DNS-rebinding"),
    ({"host": "127.0.0.1:9000", "origin": "http://evil.example"}, "cross-site"),
    ({"host": "127.0.0.1:9000", "origin": "null"}, "opaque origin"),
    ({"host": "127.0.0.1:9000", "sec-fetch-site": "cross-site"}, "cross-site"),
    ({"host": "127.0.0.1:9000", "origin": "https://127.0.0.1.evil.example"}, "cross-site"),
])
def test_rebinding_hosts_and_cross_site_pages_are_refused(headers, why):
    assert why in (refusal(headers) or "")


def test_a_loopback_page_passes_even_when_its_browser_says_cross_site():
    # http://localhost:3000 calling http://127.0.0.1:5000 is cross-site to a browser, yet on this machine
    assert refusal({"host": "127.0.0.1:5000", "origin": "http://localhost:3000", "sec-fetch-site": "cross-site"}) is None


def test_listed_hosts_and_origins_pass_and_nothing_else_does():
    allowed = dict(hosts=("emulator",), origins=("http://app.example:3000",))
    assert refusal({"host": "emulator:5000"}, **allowed) is None
    assert refusal({"host": "bucket.emulator:5000"}, **allowed) is None
    assert refusal({"host": "127.0.0.1:5000", "origin": "http://App.example:3000/"}, **allowed) is None
    assert "DNS-rebinding" in refusal({"host": "emulator.evil.example"}, **allowed)
    assert "cross-site" in refusal({"host": "127.0.0.1:5000", "origin": "http://app.example:3001"}, **allowed)
    assert "DNS-rebinding" in refusal({"host": "emulator:5000"})  # only where it is listed
