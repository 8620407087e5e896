"""The internal ALB's guard: the Host names it accepts come from its config (its hostname and
the listener rules' host conditions), and the proxy reads Origin and Sec-Fetch-Site in the
same pass over the headers as the rest, passing them on to the target."""

from devenv.compute.alb.balancer import guard_policy
from devenv.compute.alb.framing import read_request
from devenv.config.model import LoadBalancerConfig, ServiceLoadBalancerConfig


def test_the_albs_hostname_and_its_rules_host_names_are_accepted_and_no_other():
    config = LoadBalancerConfig.model_validate({"hostname": "internal-alb.shop.local", "rules": [
        {"priority": 1, "hosts": ["status.shop.test"], "fixed_response": {"status_code": "200"}}]})
    services = {"web": ServiceLoadBalancerConfig.model_validate({"paths": ["/*"], "hosts": ["*.web.test"],
                                                                 "priority": 2})}
    policy = guard_policy(config, services)
    for host in ("internal-alb.shop.local:8080", "status.shop.test", "a.web.test:80", "localhost:8080",
                 "web.localhost", "127.0.0.1:8080"):
        assert policy.host_refusal(host) is None, host
    for host in ("evil.example", "web.test", "status.shop.test.evil.example"):
        assert "DNS-rebinding" in policy.host_refusal(host), host
    # the application's front: a link from elsewhere passes, another site's POST does not
    assert policy.refusal({"host": "localhost", "sec-fetch-site": "cross-site"}) is None
    assert "cross-site" in policy.refusal({"host": "localhost", "origin": "https://evil.example"})


def test_origin_and_sec_fetch_site_are_read_and_forwarded_as_they_came():
    head = read_request([(b"Host", b"localhost"), (b"Origin", b"https://evil.example"), (b"X-A", b"1"),
                         (b"Sec-Fetch-Site", b"cross-site"), (b"origin", b"https://second.example")])
    assert head.origin == b"https://evil.example" and head.fetch_site == b"cross-site"
    assert head.lines == [b"Host: localhost\r\n", b"Origin: https://evil.example\r\n", b"X-A: 1\r\n",
                          b"Sec-Fetch-Site: cross-site\r\n", b"origin: https://second.example\r\n"]
