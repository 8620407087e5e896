"""One HTTP handler for the three AWS APIs on the ECS process's port: a JSON 1.1 request is
routed by its ``X-Amz-Target`` prefix (ECS, Application Auto Scaling), a query-protocol one
(a form body with ``Action``) goes to ELBv2. Every answer and error is in AWS's shapes."""

from __future__ import annotations

import inspect
import logging
from typing import Awaitable

from devenv.compute.http.server import Request, Response
from devenv.compute.ecs_aws import wire
from devenv.compute.ecs_aws.wire import ApiError

log = logging.getLogger("devenv.ecs")


class AwsApis:
    """``json_apis``: X-Amz-Target prefix -> an object with ``operations`` (name -> params ->
    answer); ``query_apis``: botocore service name -> the same, for the query protocol."""

    def __init__(self, json_apis: dict, query_apis: dict | None = None):
        self.json_apis = json_apis
        self.query_apis = query_apis or {}

    def __call__(self, request: Request) -> Response | Awaitable[Response]:
        target = request.header("x-amz-target")
        if target:
            prefix, _, name = target.partition(".")
            api = self.json_apis.get(prefix)
            operation = api.operations.get(name) if api is not None else None
            if operation is None:
                return wire.json_error(ApiError("UnknownOperationException", f"Unknown operation {target}"))
            return _settle(lambda: operation(wire.json_params(request)), wire.json_answer, wire.json_error)
        params = wire.query_params(request)
        action = params.get("Action", "")
        for service, api in self.query_apis.items():
            operation = api.operations.get(action)
            if operation is not None:
                return _settle(lambda: operation(params), lambda data: wire.xml_answer(service, action, data),
                               lambda error: wire.xml_error(service, error))
        error = ApiError("InvalidAction", f"The action {action or '(none)'} is not valid for this endpoint.")
        if self.query_apis:
            return wire.xml_error(next(iter(self.query_apis)), error)
        return wire.json_error(error)


def _settle(call, answer, fail) -> Response | Awaitable[Response]:
    try:
        result = call()
    except ApiError as error:
        return fail(error)
    if not inspect.isawaitable(result):
        return answer(result)

    async def finish() -> Response:
        try:
            return answer(await result)
        except ApiError as error:
            return fail(error)

    return finish()
