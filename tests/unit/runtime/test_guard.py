"""Which requests devenv's control endpoints refuse: DNS-rebinding hosts and cross-site pages;
what local programs send (boto3, the CLI, curl, containers) passes."""

import pytest

from devenv.runtime.guard import APPLICATION, LOCAL, Policy, edge_policy, refusal


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


# ---------------------------------------------------------------- one policy, per server


def test_the_applications_servers_let_links_in_but_not_another_sites_requests():
    # a link or a redirect from another site opens the application (a GET without Origin) ...
    assert APPLICATION.refusal({"host": "127.0.0.1:8080", "sec-fetch-site": "cross-site"}) is None
    assert "cross-site" in LOCAL.refusal({"host": "127.0.0.1:8080", "sec-fetch-site": "cross-site"})
    # ... but another site's POST, fetch or preflight (each carries its Origin) is refused
    for headers in ({"host": "127.0.0.1:8080", "origin": "https://evil.example", "sec-fetch-site": "cross-site"},
                    {"host": "127.0.0.1:8080", "origin": "null"}):
        assert "cross-site" in APPLICATION.refusal(headers)
    assert "DNS-rebinding" in APPLICATION.refusal({"host": "evil.example:8080"})
    assert APPLICATION.refusal({"host": "127.0.0.1:8080", "origin": "http://shop.localhost:8443"}) is None


def test_the_edge_answers_its_own_hostname_localhost_and_loopback_addresses_only():
    edge = edge_policy("Shop.localhost")
    for host in ("shop.localhost:8443", "SHOP.localhost", "localhost:8443", "127.0.0.1:8443", "[::1]:8443", None):
        assert edge.host_refusal(host) is None, host
    for host in ("other.localhost:8443", "api.shop.localhost", "evil.example", "10.0.0.1:8443",
                 "host.docker.internal:8443"):
        assert "DNS-rebinding" in edge.host_refusal(host), host
    assert "cross-site" in edge.refusal({"host": "shop.localhost", "origin": "https://evil.example"})
    assert edge.refusal({"host": "shop.localhost", "origin": "https://shop.localhost:8443"}) is None


def test_host_patterns_accept_the_names_they_match_as_alb_host_conditions_do():
    policy = Policy.of(hosts=("internal-alb.local",), host_patterns=("*.Special.test", "admin.?.test"))
    for host in ("api.special.test:80", "a.b.special.test", "ADMIN.x.test", "internal-alb.local:81",
                 "x.internal-alb.local", "127.0.0.1"):
        assert policy.host_refusal(host) is None, host
    for host in ("special.test", "admin.xy.test", "special.test.evil.example", "internal-alb.local.evil.example"):
        assert "DNS-rebinding" in policy.host_refusal(host), host


def test_a_pattern_is_literal_but_for_its_wildcards():
    policy = Policy.of(host_patterns=("a.b+c.test",))
    assert policy.host_refusal("a.b+c.test") is None
    assert policy.host_refusal("a.bbc.test") is not None
    assert Policy.of().host_refusal("anything.test") is not None  # no pattern matches nothing


# ---------------------------------------------------------------- ASGI (ministack, LocalStack)


def _asgi(kind: str, headers: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Runs the guard over one request; answers (what the application saw, what was sent)."""
    import asyncio

    from devenv.runtime.guard import asgi_middleware

    seen: list[dict] = []
    sent: list[dict] = []

    async def app(scope, receive, send):
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    scope = {"type": kind, "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(asgi_middleware(app, Policy.of(hosts=("emulator", "localhost.localstack.cloud")))(scope, receive, send))
    return seen, sent


@pytest.mark.parametrize("host", ["127.0.0.1:4566", "localhost:4566", "emulator:4566",
                                  "sqs.localhost.localstack.cloud:4566", None])
def test_asgi_guard_serves_this_machines_requests(host):
    seen, sent = _asgi("http", {"Host": host} if host else {})
    assert len(seen) == 1 and sent[0]["status"] == 200


def test_asgi_guard_refuses_a_rebinding_host_and_another_sites_page_before_the_application():
    for headers in ({"Host": "evil.example:4566"}, {"host": "127.0.0.1", "ORIGIN": "http://evil.example"},
                    {"Host": "127.0.0.1", "Sec-Fetch-Site": "cross-site"}):
        seen, sent = _asgi("http", headers)
        assert seen == [], headers
        assert sent[0]["status"] == 403 and b"refused" in sent[1]["body"], headers
    seen, sent = _asgi("websocket", {"Host": "evil.example"})
    assert seen == [] and sent == [{"type": "websocket.close", "code": 1008}]


def test_asgi_guard_leaves_lifespan_events_to_the_application():
    seen, _ = _asgi("lifespan", {"Host": "evil.example"})
    assert [s["type"] for s in seen] == ["lifespan"]
