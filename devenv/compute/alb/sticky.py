"""Pure: duration-based sticky sessions, the load balancer's ``AWSALB`` and ``AWSALBTG`` cookies.

AWS behaviour copied here (Elastic Load Balancing user guide, "Sticky sessions for your
Application Load Balancer";
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/sticky-sessions.html):

- With duration-based stickiness on a target group, the load balancer answers each request
  with an ``AWSALB`` cookie naming the target it chose, and ``AWSALBCORS`` with the same value
  (``SameSite=None; Secure``, for cross-origin requests); both expire after the stickiness
  duration (1 s to 7 days, default 1 day) and are renewed with every response.
- A request that brings the cookie goes to that target while it is healthy and registered;
  otherwise the load balancer chooses a new target as usual and the new cookie names it.
- The cookie's content is the load balancer's own (AWS encrypts it); devenv's is the target
  id in URL-safe base64, so a client cannot tell what it holds but devenv need keep no table.

Target group stickiness, the ``AWSALBTG`` cookie (same guide, "Listener rules", section
"Forward actions"; API reference, TargetGroupStickinessConfig;
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html#forward-actions):

- A forward action to several weighted target groups may enable target group stickiness
  (a duration of 1 s to 7 days). The load balancer then answers with an ``AWSALBTG`` cookie
  naming the target group it chose, and ``AWSALBTGCORS`` with the same value and
  ``SameSite=None; Secure``; a request that matches the rule and brings the cookie is routed
  to that target group. Requests without it are spread by weight.
- The attributes are AWSALB's: ``Expires`` (not Max-Age) and ``Path=/``, and ``SameSite=None;
  Secure`` on the CORS one, as real ALB responses show them. devenv sends them with every
  response of the rule, renewing the duration, as it does AWSALB.
- Inside the chosen group, target stickiness (``AWSALB``) applies as usual; ELBv2 refuses a
  weighted forward without target group stickiness to a group with stickiness on.
"""

from __future__ import annotations

import base64
import binascii
from email.utils import formatdate
from typing import Sequence

COOKIE = b"awsalb"
GROUP_COOKIE = b"awsalbtg"
_PREFIX = b"devenv:"
_GROUP_PREFIX = b"devenv-tg:"  # so that neither cookie's value passes for the other's


def cookie_value(target_id: str, prefix: bytes = _PREFIX) -> str:
    return base64.urlsafe_b64encode(prefix + target_id.encode()).decode().rstrip("=")


def _named(headers: Sequence[tuple[bytes, bytes]], cookie: bytes, prefix: bytes) -> str | None:
    for name, value in headers:
        if name.lower() != b"cookie":
            continue
        for pair in value.split(b";"):
            key, _, token = pair.strip().partition(b"=")
            if key.lower() != cookie:
                continue
            try:
                raw = base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4))
            except (binascii.Error, ValueError):
                return None
            return raw[len(prefix):].decode("utf-8", "replace") if raw.startswith(prefix) else None
    return None


def target_of(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The target the request's ``AWSALB`` cookie names, or None (no cookie, or not one of
    devenv's)."""
    return _named(headers, COOKIE, _PREFIX)


def group_of(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The target group the request's ``AWSALBTG`` cookie names, or None."""
    return _named(headers, GROUP_COOKIE, _GROUP_PREFIX)


def _lines(name: str, value: str, now: float, duration: float) -> str:
    expires = formatdate(now + duration, usegmt=True)
    return (f"Set-Cookie: {name}={value}; Expires={expires}; Path=/\r\n"
            f"Set-Cookie: {name}CORS={value}; Expires={expires}; Path=/; SameSite=None; Secure\r\n")


def set_cookie_lines(target_id: str, *, now: float, duration: float) -> bytes:
    """The ``Set-Cookie`` header lines that keep the client on ``target_id`` for ``duration``."""
    return _lines("AWSALB", cookie_value(target_id), now, duration).encode()


def group_cookie_lines(group: str, *, now: float, duration: float) -> bytes:
    """The ``Set-Cookie`` header lines (``AWSALBTG``, ``AWSALBTGCORS``) that keep the client on
    target group ``group`` for ``duration``."""
    return _lines("AWSALBTG", cookie_value(group, _GROUP_PREFIX), now, duration).encode()
