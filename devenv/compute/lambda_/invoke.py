"""What every caller of a Lambda function sees: the Invoker protocol and its results.

API Gateway, SQS event source mappings, EventBridge targets and the Invoke HTTP API all go
through an Invoker, so they share one set of semantics (concurrency, throttling, timeouts,
error shapes) whatever calls the function.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: this module does no I/O
    import asyncio


class InvocationType(str, enum.Enum):
    REQUEST_RESPONSE = "RequestResponse"
    EVENT = "Event"
    DRY_RUN = "DryRun"


# The errors devenv answers whose model (botocore's lambda service) spells the member "Message".
CAPITALISED_MESSAGE = frozenset({"ResourceNotFoundException", "ResourceInUseException", "ServiceException"})


class InvokeError(Exception):
    """An invocation the Lambda service itself refuses (not a function error).

    ``status`` and ``error_type`` are what the Invoke API answers, e.g. 404
    ResourceNotFoundException, 429 TooManyRequestsException, 413 RequestEntityTooLargeException."""

    def __init__(self, status: int, error_type: str, message: str, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.reason = reason

    def body(self) -> bytes:
        """The error's JSON as Lambda sends it: its message under the key botocore's model
        names for this error (``Message`` for some, ``message`` for most)."""
        data = {"Type": "User", ("Message" if self.error_type in CAPITALISED_MESSAGE else "message"): self.message}
        if self.reason:
            data["Reason"] = self.reason
        return json.dumps(data).encode()


class FunctionNotFound(InvokeError):
    def __init__(self, arn: str):
        super().__init__(404, "ResourceNotFoundException", f"Function not found: {arn}")


class Throttled(InvokeError):
    def __init__(self, reason: str = "ReservedFunctionConcurrentInvocationLimitExceeded"):
        super().__init__(429, "TooManyRequestsException", "Rate Exceeded.", reason)


class PayloadTooLarge(InvokeError):
    """A payload over Lambda's limit, with the code and message AWS answers (the code is
    RequestEntityTooLargeException, not the RequestTooLargeException of botocore's model)."""

    def __init__(self, size: int, limit: int, invocation_type: str = "RequestResponse"):
        message = (f"{size} byte payload is too large for the Event invocation type (limit {limit} bytes)"
                   if invocation_type == "Event" else
                   f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
        super().__init__(413, "RequestEntityTooLargeException", message)


class InvalidRequestContent(InvokeError):
    """A payload that is not JSON: refused before any function runs."""

    def __init__(self, detail: str):
        super().__init__(400, "InvalidRequestContentException",
                         f"Could not parse request body into json: Could not parse payload into json: {detail}")


@dataclass(frozen=True)
class InvokeResult:
    """The outcome of one synchronous invocation, as the Invoke API reports it.

    ``function_error`` is "Unhandled" when the function failed (an exception, a timeout, a
    crash, an init error); ``payload`` then holds AWS's error object
    (``{"errorMessage", "errorType", "requestId", "stackTrace"}``)."""

    request_id: str
    payload: bytes
    function_error: str | None = None
    status: int = 200
    executed_version: str = "$LATEST"
    log_tail: str | None = None  # base64 of the last 4 KB of its own log (START to REPORT), for LogType=Tail

    @property
    def ok(self) -> bool:
        return self.function_error is None

    def error(self) -> dict | None:
        """The parsed error object, when the function failed."""
        if self.function_error is None:
            return None
        try:
            return json.loads(self.payload)
        except ValueError:
            return {"errorMessage": self.payload.decode(errors="replace"), "errorType": "Unknown"}


class Invoker(Protocol):
    async def invoke(self, function: str, payload: bytes, *, trace_id: str | None = None,
                     client_context: str | None = None, answered: asyncio.Future | None = None) -> InvokeResult:
        """RequestResponse: runs the function and waits for its result. Raises InvokeError
        when the service refuses (unknown function, throttled, payload too large).

        ``answered``: a caller that answers its own client later than the step in which this
        returns (API Gateway) passes a future it sets once it has; the instance's own
        acknowledgement waits for it, so the client's answer is written first."""

    async def invoke_async(self, function: str, payload: bytes, *, trace_id: str | None = None) -> str:
        """Event: queues the invocation (retried on error, then sent to the function's
        on-failure destination or DLQ) and returns its request id at once."""
