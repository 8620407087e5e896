"""An HTTP endpoint compatible with AWS Lambda's Invoke API (and enough of GetFunction /
ListFunctions for tools that look a function up), so boto3 and the AWS CLI work unchanged
with AWS_ENDPOINT_URL_LAMBDA pointing here."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Awaitable, Mapping

from devenv.runtime.peers import PeerScreen
from devenv.compute.http import server as http1
from devenv.compute.lambda_.functions import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT, FunctionSpec
from devenv.compute.http.server import Request, Response, Router, guarded, json_response
from devenv.compute.lambda_.invoke import InvalidRequestContent, InvocationType, InvokeError, PayloadTooLarge
from devenv.compute.lambda_.runtime import LambdaRuntime

API = "/2015-03-31/functions"


MAX_REQUEST = SYNC_PAYLOAD_LIMIT  # a larger body is not even read: AWS's 413 is answered at once


def error_response(exc: InvokeError) -> Response:
    return Response(exc.status, exc.body(), [("x-amzn-ErrorType", exc.error_type)])


def _payload_limit(kind: str | None) -> int:
    return ASYNC_PAYLOAD_LIMIT if kind == InvocationType.EVENT.value else SYNC_PAYLOAD_LIMIT


def too_large(headers: Mapping[str, str], size: int) -> Response:
    """The answer to a request whose body the server did not read (over MAX_REQUEST)."""
    kind = headers.get("x-amz-invocation-type", InvocationType.REQUEST_RESPONSE.value)
    return error_response(PayloadTooLarge(size, _payload_limit(kind), kind))


def checked_payload(body: bytes, kind: str) -> bytes:
    """The event to invoke with, as Lambda takes it: no body is ``{}``; a body over the
    invocation type's limit or that is not JSON is refused before any function runs."""
    if not body:
        return b"{}"
    limit = _payload_limit(kind)
    if len(body) > limit:
        raise PayloadTooLarge(len(body), limit, kind)
    try:
        json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError too
        raise InvalidRequestContent(str(exc)) from None
    return body


def shown_environment(spec: FunctionSpec) -> dict[str, str]:
    """The environment as Get/ListFunctions show it: a variable filled from ``secrets:`` (a
    password, a URL holding one) is named, never given. Any local user can reach this port, and
    on AWS such a value would live in Secrets Manager, not in the function's configuration."""
    return {key: f"<secret {spec.secret_refs[key]}>" if key in spec.secret_refs else value
            for key, value in spec.environment.items()}


def _configuration(spec: FunctionSpec) -> dict:
    return {
        "FunctionName": spec.name, "FunctionArn": spec.arn, "Runtime": spec.runtime, "Handler": spec.handler,
        "Timeout": int(spec.timeout), "MemorySize": spec.memory_mb, "Version": "$LATEST", "State": "Active",
        "LastUpdateStatus": "Successful", "PackageType": "Zip", "Architectures": ["x86_64"],
        "Role": f"arn:aws:iam::{spec.account}:role/{spec.name}-role",
        "Environment": {"Variables": shown_environment(spec)},
    }


class InvokeApi:
    """The Lambda API calls devenv answers (an ``http1`` handler; ``serve`` guards it)."""

    def __init__(self, runtime: LambdaRuntime):
        self.runtime = runtime
        self._router = (Router()
                        .add("POST", API + "/{name}/invocations", self.invoke)
                        .add("GET", API, self.list_functions)
                        .add("GET", API + "/", self.list_functions)
                        .add("GET", API + "/{name}", self.get_function)
                        .add("GET", API + "/{name}/configuration", self.get_configuration))

    def __call__(self, request: Request) -> Response | Awaitable[Response]:
        return self._router(request)

    def list_functions(self, request: Request) -> Response:
        return json_response({"Functions": [_configuration(p.spec) for p in self.runtime.pools.values()]})

    async def invoke(self, request: Request, name: str) -> Response:
        runtime = self.runtime
        qualifier = request.query.get("Qualifier")
        kind = request.header("x-amz-invocation-type", InvocationType.REQUEST_RESPONSE.value)
        try:
            pool = runtime.pool(name)
            if qualifier not in (None, "$LATEST"):
                raise InvokeError(404, "ResourceNotFoundException",
                                  f"Function not found: {pool.spec.arn}:{qualifier}")
            payload = checked_payload(request.body, kind)
            trace = request.header("x-amzn-trace-id")
            if kind == InvocationType.DRY_RUN.value:
                return Response(204, headers=[("x-amzn-RequestId", request.header("amz-sdk-invocation-id", ""))],
                                content_type=None)
            if kind == InvocationType.EVENT.value:
                request_id = await runtime.invoke_async(pool.spec.name, payload, trace_id=trace)
                return Response(202, headers=[("x-amzn-RequestId", request_id)], content_type=None)
            if kind != InvocationType.REQUEST_RESPONSE.value:
                raise InvokeError(400, "InvalidParameterValueException",
                                  f"Unsupported invocation type {kind}")
            client_context = request.header("x-amz-client-context")
            if client_context:
                client_context = base64.b64decode(client_context).decode(errors="replace")
            result = await runtime.invoke(pool.spec.name, payload, trace_id=trace, client_context=client_context)
        except InvokeError as exc:
            return error_response(exc)
        headers = [("x-amzn-RequestId", result.request_id), ("X-Amz-Executed-Version", result.executed_version)]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        if request.header("x-amz-log-type") == "Tail" and result.log_tail is not None:
            headers.append(("X-Amz-Log-Result", result.log_tail))
        return Response(200, result.payload, headers)

    def get_function(self, request: Request, name: str) -> Response:
        try:
            pool = self.runtime.pool(name)
        except InvokeError as exc:
            return error_response(exc)
        return json_response({"Configuration": _configuration(pool.spec),
                              "Code": {"RepositoryType": "Local", "Location": str(pool.spec.code_dir)}})

    def get_configuration(self, request: Request, name: str) -> Response:
        try:
            return json_response(_configuration(self.runtime.pool(name).spec))
        except InvokeError as exc:
            return error_response(exc)


async def serve(runtime: LambdaRuntime, host: str, port: int, *,
                screen: PeerScreen | None = None) -> asyncio.base_events.Server:
    """The Invoke API on ``host:port``, for programs on this machine only (``runtime/guard.py``)."""
    handler = guarded(InvokeApi(runtime), [("x-amzn-ErrorType", "AccessDeniedException")])
    return await http1.serve(handler, host, port, max_body=MAX_REQUEST, screen=screen, too_large=too_large)
