"""What a batch's invocation means for its messages (pure): delete, keep, or keep only the reported failures."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Collection, Sequence

from devenv.compute.lambda_.invoke import InvokeError, InvokeResult

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- outcomes (pure)


class Verdict(Enum):
    SUCCEEDED = "succeeded"  # every message is deleted
    PARTIAL = "partial"  # the function named failed messages; the others are deleted
    FAILED = "failed"  # function error or invalid batch response: every message stays
    REFUSED = "refused"  # Lambda refused the invoke (throttled, ...): every message stays


@dataclass(frozen=True)
class Decision:
    """What to do with a batch after its invocation: ``delete`` holds message ids."""

    verdict: Verdict
    delete: frozenset[str]
    reason: str = ""


@dataclass(frozen=True)
class BatchResponse:
    """A function's partial batch response: the ids it reported failed, or why the response
    is invalid (then the whole batch counts as failed)."""

    failed: frozenset[str] = frozenset()
    invalid: str | None = None


def parse_batch_response(payload: bytes, message_ids: Collection[str]) -> BatchResponse:
    """Read ``{"batchItemFailures": [{"itemIdentifier": id}, ...]}`` as Lambda does.

    All succeeded: an empty or null response, no or a null ``batchItemFailures``, an empty
    list. Invalid (the whole batch failed): not JSON, not an object, a list that is not one,
    an entry without ``itemIdentifier`` (a misspelt key), a null, empty or non-string
    identifier, or one naming no message of the batch.
    """
    if not payload.strip():
        return BatchResponse()
    try:
        data = json.loads(payload)
    except ValueError:
        return BatchResponse(invalid="the response is not JSON")
    if data is None:
        return BatchResponse()
    if not isinstance(data, dict):
        return BatchResponse(invalid=f"the response is a JSON {type(data).__name__}, not an object")
    items = data.get("batchItemFailures")
    if items is None:
        return BatchResponse()
    if not isinstance(items, list):
        return BatchResponse(invalid="batchItemFailures is not a list")
    failed = set()
    for item in items:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return BatchResponse(invalid=f"a batchItemFailures entry has no itemIdentifier: {item!r}")
        identifier = item["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier:
            return BatchResponse(invalid=f"itemIdentifier {identifier!r} is not a message id")
        if identifier not in message_ids:
            return BatchResponse(invalid=f"itemIdentifier {identifier!r} names no message of the batch")
        failed.add(identifier)
    return BatchResponse(frozenset(failed))


def decide(message_ids: Sequence[str], outcome: InvokeResult | BaseException, *,
           report_batch_item_failures: bool) -> Decision:
    """Which messages of a batch to delete, given how its invocation ended.

    ``outcome`` is the InvokeResult, or the exception the invoke raised (InvokeError when
    Lambda refused it; anything else is a fault of the runtime and treated as a failure).
    """
    ids = frozenset(message_ids)
    if isinstance(outcome, InvokeError):
        return Decision(Verdict.REFUSED, frozenset(), f"{outcome.error_type}: {outcome.message}")
    if isinstance(outcome, BaseException):
        return Decision(Verdict.FAILED, frozenset(), f"the invoke failed: {outcome!r}")
    if outcome.function_error is not None:
        error = outcome.error() or {}
        what = ": ".join(str(error[k]) for k in ("errorType", "errorMessage") if error.get(k))
        return Decision(Verdict.FAILED, frozenset(),
                        f"function error ({outcome.function_error})" + (f": {what}" if what else ""))
    if not report_batch_item_failures:
        return Decision(Verdict.SUCCEEDED, ids)
    response = parse_batch_response(outcome.payload, ids)
    if response.invalid is not None:
        return Decision(Verdict.FAILED, frozenset(), f"invalid batch response: {response.invalid}")
    if not response.failed:
        return Decision(Verdict.SUCCEEDED, ids)
    return Decision(Verdict.PARTIAL, ids - response.failed,
                    f"{len(response.failed)} of {len(ids)} messages reported failed")


