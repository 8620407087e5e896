"""Lean calls to an emulator's AWS JSON APIs, for background senders that call every second
from the process serving requests (the awslogs shipper, the X-Ray daemon's forwarder).

What boto3 would send: a JSON body, SigV4-signed (``sigv4``), over one kept connection
(``runtime/http.KeptConnection``); what boto3 would answer: the JSON answer as a dict, or an
``errors.AwsErrorAnswer`` whose ``response`` carries the error code as boto3's
``ClientError`` does (so ``sender.error_code`` and ``sender.refused`` read both). No answer
raises ``EndpointUnreachable`` or ``EndpointTimeout``. One attempt per call: the senders
retry on their own.

Why not boto3 there: botocore costs ~1.3 ms of CPU per small call (request objects, hooks,
its signer, urllib3) and ~5 µs per item; this costs a third of that.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

from devenv.errors import AwsErrorAnswer
from devenv.runtime.http import KeptConnection

from .endpoint import DUMMY_CREDENTIALS
from .sigv4 import signed_headers

TIMEOUT = 10.0  # as the background senders' boto3 clients read (endpoint.SENDER_SETTINGS)


class LeanApi:
    """Calls of one thread to ``service``'s API at ``url`` in ``region``; ``name`` says what
    it is in messages ("CloudWatch Logs")."""

    def __init__(self, url: str, region: str, service: str, name: str, *, timeout: float = TIMEOUT,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)):
        self._connection = KeptConnection(url, name=name, timeout=timeout)
        self._region = region
        self._service = service
        self._name = name
        self._clock = clock

    def call(self, operation: str, params: dict[str, Any], *, path: str = "/", target: str | None = None,
             content_type: str = "application/x-amz-json-1.1") -> dict[str, Any]:
        """POST ``params`` to ``path`` (with ``X-Amz-Target: target`` for the JSON protocol;
        REST-JSON APIs name the operation by ``path``)."""
        body = json.dumps(params, separators=(",", ":")).encode()
        headers = {"Content-Type": content_type, **({"X-Amz-Target": target} if target else {})}
        headers = signed_headers(host=self._connection.host, path=path, region=self._region, service=self._service,
                                 headers=headers, body=body, access_key=DUMMY_CREDENTIALS[0],
                                 secret_key=DUMMY_CREDENTIALS[1], now=self._clock())
        reply = self._connection.request("POST", path, body=body, headers=headers)
        try:
            answer = json.loads(reply.body) if reply.body else {}
        except ValueError:
            answer = None
        if reply.status < 300 and isinstance(answer, dict):
            return answer
        code, message = _error(reply.status, answer, reply.header("x-amzn-ErrorType"))
        raise AwsErrorAnswer(f"{self._name} answered {reply.status} to {operation}: {code}: {message}",
                             url=self._connection.url, status=reply.status, body=reply.body, code=code, detail=message)

    def close(self) -> None:
        self._connection.close()


def _error(status: int, answer: Any, error_type: str | None) -> tuple[str, str]:
    """An error answer's code and message, as botocore reads a JSON protocol's: ``__type``
    (or the ``x-amzn-ErrorType`` header) after any ``#`` and before any ``:``; the status
    when there is neither."""
    fields = answer if isinstance(answer, dict) else {}
    code = str(fields.get("__type") or fields.get("code") or error_type or "")
    code = code.rsplit("#", 1)[-1].split(":", 1)[0]
    message = str(fields.get("message") or fields.get("Message") or "")
    return code or str(status), message
