"""The Lambda API's event source mapping calls, over the stack's SQS mappings:
ListEventSourceMappings, GetEventSourceMapping and UpdateEventSourceMapping, routes added to
the Invoke API's endpoint.

An update changes the running poller at once (``SqsEventSourceMapping.reconfigure``) and is
local state: devenv.yaml is not written, and the next start of the compute process begins
again from it, as a redeploy of a template would on AWS.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from pydantic import ValidationError

from devenv.config.model import SqsEventSourceConfig
from devenv.compute.http.server import Request, Response, json_response
from devenv.compute.lambda_.invoke import InvokeError
from devenv.compute.lambda_.invoke_api import error_response, page

if TYPE_CHECKING:
    from devenv.compute.event_sources.manager import EventSourceManager
    from devenv.compute.event_sources.pollers import SqsEventSourceMapping

PATH = "/2015-03-31/event-source-mappings"
LIST_MOST = 100  # ListEventSourceMappings answers at most 100 a page
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
# What UpdateEventSourceMapping may change here, and the config field each one is.
UPDATABLE = {"Enabled": "enabled", "BatchSize": "batch_size",
             "MaximumBatchingWindowInSeconds": "maximum_batching_window",
             "FunctionResponseTypes": "report_batch_item_failures", "ScalingConfig": "maximum_concurrency"}


class NotFound(InvokeError):
    def __init__(self) -> None:
        super().__init__(404, "ResourceNotFoundException", "The resource you requested does not exist.")


class InvalidParameter(InvokeError):
    def __init__(self, message: str) -> None:
        super().__init__(400, "InvalidParameterValueException", message)


def queue_arn(mapping: SqsEventSourceMapping, account: str) -> str:
    """The queue's ARN: as SQS gave it once the mapping polled, else as the emulator would."""
    return mapping.queue_arn or f"arn:aws:sqs:{mapping.region}:{account}:{mapping.queue}"


def describe(mapping: SqsEventSourceMapping, function_arn: str, account: str, state: str | None = None) -> dict:
    """The mapping as EventSourceMappingConfiguration (botocore's shape); ``state`` overrides
    the settled one (an update answers with the transition: Enabling, Disabling, Updating)."""
    config = mapping.config
    data: dict[str, Any] = {
        "UUID": mapping.uuid,
        "BatchSize": config.batch_size,
        "MaximumBatchingWindowInSeconds": int(config.maximum_batching_window),
        "EventSourceArn": queue_arn(mapping, account),
        "FunctionArn": function_arn,
        "LastModified": round(mapping.last_modified, 3),
        "LastProcessingResult": mapping.last_result,
        "State": state or ("Enabled" if config.enabled else "Disabled"),
        "StateTransitionReason": "USER_INITIATED",
        "FunctionResponseTypes": [REPORT_BATCH_ITEM_FAILURES] if config.report_batch_item_failures else [],
        "EventSourceMappingArn": f"arn:aws:lambda:{mapping.region}:{account}:event-source-mapping:{mapping.uuid}",
    }
    if config.maximum_concurrency is not None:
        data["ScalingConfig"] = {"MaximumConcurrency": config.maximum_concurrency}
    return data


def changes(body: Mapping[str, Any], mapping: SqsEventSourceMapping) -> dict[str, Any]:
    """The config fields an UpdateEventSourceMapping request changes (InvalidParameter for
    what devenv's mappings cannot change)."""
    update: dict[str, Any] = {}
    for key, value in body.items():
        if key == "FunctionName":
            if str(value).rsplit(":function:", 1)[-1].split(":")[0] != mapping.function:
                raise InvalidParameter("devenv cannot move an event source mapping to another function; "
                                       "change devenv.yaml instead")
            continue
        if key not in UPDATABLE:
            raise InvalidParameter(f"devenv's event source mappings cannot change {key}")
        if key == "FunctionResponseTypes":
            if not isinstance(value, list) or any(v != REPORT_BATCH_ITEM_FAILURES for v in value):
                raise InvalidParameter(f"FunctionResponseTypes takes [] or [\"{REPORT_BATCH_ITEM_FAILURES}\"], "
                                       f"got {json.dumps(value)}")
            value = bool(value)
        elif key == "ScalingConfig":
            value = (value or {}).get("MaximumConcurrency") if isinstance(value, dict) else value
        update[UPDATABLE[key]] = value
    return update


class EventSourceMappingApi:
    """The event source mapping calls over ``manager``'s SQS mappings; ``account`` is the one
    function ARNs name."""

    def __init__(self, manager: EventSourceManager, runtime: Any, account: str):
        self.manager = manager
        self.runtime = runtime
        self.account = account

    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", PATH, self.list), ("GET", PATH + "/", self.list),
                ("GET", PATH + "/{uuid}", self.get), ("PUT", PATH + "/{uuid}", self.update)]

    def _function_arn(self, mapping: SqsEventSourceMapping) -> str:
        try:
            return self.runtime.pool(mapping.function).spec.arn
        except InvokeError:
            return f"arn:aws:lambda:{mapping.region}:{self.account}:function:{mapping.function}"

    def _describe(self, mapping: SqsEventSourceMapping, state: str | None = None) -> dict:
        return describe(mapping, self._function_arn(mapping), self.account, state)

    def _find(self, uuid: str) -> SqsEventSourceMapping:
        for mapping in self.manager.mappings:
            if mapping.uuid == uuid:
                return mapping
        raise NotFound()

    def list(self, request: Request) -> Response:
        function = request.query.get("FunctionName")
        source = request.query.get("EventSourceArn")
        mappings = sorted(self.manager.mappings, key=lambda m: m.uuid)
        if function:
            name = function.rsplit(":function:", 1)[-1].split(":")[0]
            mappings = [m for m in mappings if m.function == name]
        if source:  # by queue name and region: the account part differs from emulator to emulator
            _, _, _, region, _, queue = (source.split(":") + [""] * 6)[:6]
            mappings = [m for m in mappings if m.queue == queue and m.region == region]
        try:
            shown, marker = page(mappings, [m.uuid for m in mappings], request.query, LIST_MOST)
        except InvokeError as exc:
            return error_response(exc)
        answer: dict[str, Any] = {"EventSourceMappings": [self._describe(m) for m in shown]}
        if marker is not None:
            answer["NextMarker"] = marker
        return json_response(answer)

    def get(self, request: Request, uuid: str) -> Response:
        try:
            return json_response(self._describe(self._find(uuid)))
        except InvokeError as exc:
            return error_response(exc)

    async def update(self, request: Request, uuid: str) -> Response:
        try:
            mapping = self._find(uuid)
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                raise InvalidParameter("the request body is not JSON") from None
            if not isinstance(body, dict):
                raise InvalidParameter("the request body is not a JSON object")
            update = changes(body, mapping)
            try:
                config = SqsEventSourceConfig.model_validate({**mapping.config.model_dump(), **update})
            except ValidationError as exc:
                raise InvalidParameter("; ".join(e["msg"] for e in exc.errors())) from None
        except InvokeError as exc:
            return error_response(exc)
        was = mapping.config.enabled
        state = ("Disabling" if was and not config.enabled else "Enabling" if config.enabled and not was
                 else "Updating")
        await mapping.reconfigure(config)
        return json_response(self._describe(mapping, state), status=202)
