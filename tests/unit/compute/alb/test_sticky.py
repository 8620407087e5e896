"""The AWSALB and AWSALBTG stickiness cookies: what the load balancer sets and what it reads back."""

from __future__ import annotations

from devenv.compute.alb.sticky import cookie_value, group_cookie_lines, group_of, set_cookie_lines, target_of


def test_a_cookie_names_its_target_and_only_devenvs_cookies_count():
    value = cookie_value("task-7f3a").encode()
    assert target_of([(b"Cookie", b"a=1; AWSALB=" + value + b"; b=2")]) == "task-7f3a"
    assert target_of([(b"cookie", b"x=1"), (b"COOKIE", b"AWSALB=" + value)]) == "task-7f3a"  # any Cookie line
    assert target_of([(b"Cookie", b"AWSALBX=" + value)]) is None
    assert target_of([(b"Cookie", b"AWSALB=bm90LWRldmVudg")]) is None  # base64, but not one of devenv's
    assert target_of([(b"Cookie", b"AWSALB=%%%")]) is None
    assert target_of([(b"X-Cookie", b"AWSALB=" + value)]) is None
    assert target_of([]) is None


def test_the_cookies_expire_after_the_duration_and_cors_is_cross_site():
    lines = set_cookie_lines("t1", now=0.0, duration=86400).decode().split("\r\n")
    value = cookie_value("t1")
    assert lines[0] == f"Set-Cookie: AWSALB={value}; Expires=Fri, 02 Jan 1970 00:00:00 GMT; Path=/"
    assert lines[1] == (f"Set-Cookie: AWSALBCORS={value}; Expires=Fri, 02 Jan 1970 00:00:00 GMT; Path=/; "
                        "SameSite=None; Secure")
    assert lines[2] == ""


def test_the_target_group_cookie_names_its_group_and_is_not_the_target_cookie():
    value = cookie_value("orders-canary", b"devenv-tg:").encode()
    assert group_of([(b"Cookie", b"AWSALB=x; AWSALBTG=" + value)]) == "orders-canary"
    assert target_of([(b"Cookie", b"AWSALBTG=" + value)]) is None  # each cookie by its own name
    assert group_of([(b"Cookie", b"AWSALBTG=" + cookie_value("orders").encode())]) is None  # an AWSALB value
    assert group_of([(b"Cookie", b"AWSALB=" + value)]) is None
    lines = group_cookie_lines("orders-canary", now=0.0, duration=60).decode().split("\r\n")
    assert lines[0] == f"Set-Cookie: AWSALBTG={value.decode()}; Expires=Thu, 01 Jan 1970 00:01:00 GMT; Path=/"
    assert lines[1] == (f"Set-Cookie: AWSALBTGCORS={value.decode()}; Expires=Thu, 01 Jan 1970 00:01:00 GMT; "
                        "Path=/; SameSite=None; Secure")
