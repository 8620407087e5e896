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
