"""A lean CloudWatch Logs client for the awslogs shipper: the three calls it makes
(CreateLogGroup, CreateLogStream, PutLogEvents) with boto3's names and answers, over one
kept connection (``runtime/http.KeptConnection``), signed with ``sigv4``.

Why not boto3: the shipper sends every second per stream, and the Lambda runtime has a
stream per instance, a few events each. botocore costs ~2 ms of CPU per call whatever its
size and ~5.5 µs per event (serialising, hooks, its HTTP stack), in the process that also
serves the invocations. Here a call is ``json.dumps``, a signature and a write.

An error answer raises ``errors.AwsErrorAnswer`` (its ``response`` as boto3's ``ClientError``
has it, so ``sender.error_code`` and ``sender.refused`` read both); no answer raises
``EndpointUnreachable`` or ``EndpointTimeout``. One attempt per call: the shipper retries.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

from devenv.errors import AwsErrorAnswer
from devenv.runtime.http import KeptConnection

from .endpoint import DUMMY_CREDENTIALS
from .sigv4 import signed_headers

TARGET_PREFIX = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"
TIMEOUT = 10.0  # as the background senders' boto3 clients read (endpoint.SENDER_SETTINGS)


class LogsClient:
    """Calls of one thread to CloudWatch Logs at ``url`` in ``region``."""

    def __init__(self, url: str, region: str, *, timeout: float = TIMEOUT,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)):
        self._connection = KeptConnection(url, name="CloudWatch Logs", timeout=timeout)
        self._region = region
        self._clock = clock

    def create_log_group(self, *, logGroupName: str) -> dict[str, Any]:
        return self._call("CreateLogGroup", {"logGroupName": logGroupName})

    def create_log_stream(self, *, logGroupName: str, logStreamName: str) -> dict[str, Any]:
        return self._call("CreateLogStream", {"logGroupName": logGroupName, "logStreamName": logStreamName})

    def put_log_events(self, *, logGroupName: str, logStreamName: str, logEvents: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call("PutLogEvents", {"logGroupName": logGroupName, "logStreamName": logStreamName,
                                           "logEvents": logEvents})

    def close(self) -> None:
        self._connection.close()

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(params, separators=(",", ":")).encode()
        headers = signed_headers(host=self._connection.host, path="/", region=self._region, service="logs",
                                 headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET_PREFIX + operation},
                                 body=body, access_key=DUMMY_CREDENTIALS[0], secret_key=DUMMY_CREDENTIALS[1],
                                 now=self._clock())
        reply = self._connection.request("POST", "/", body=body, headers=headers)
        try:
            answer = json.loads(reply.body) if reply.body else {}
        except ValueError:
            answer = None
        if reply.status < 300 and isinstance(answer, dict):
            return answer
        code, message = _error(reply.status, answer, reply.header("x-amzn-ErrorType"))
        raise AwsErrorAnswer(f"CloudWatch Logs answered {reply.status} to {operation}: {code}: {message}",
                             url=self._connection.url, status=reply.status, body=reply.body, code=code, detail=message)


def _error(status: int, answer: Any, error_type: str | None) -> tuple[str, str]:
    """An error answer's code and message, as botocore reads a JSON protocol's: ``__type``
    (or the ``x-amzn-ErrorType`` header) after any ``#`` and before any ``:``."""
    fields = answer if isinstance(answer, dict) else {}
    code = str(fields.get("__type") or fields.get("code") or error_type or "")
    code = code.rsplit("#", 1)[-1].split(":", 1)[0]
    message = str(fields.get("message") or fields.get("Message") or "")
    return code or str(status), message

