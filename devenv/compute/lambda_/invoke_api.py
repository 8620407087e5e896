"""An HTTP endpoint speaking AWS Lambda's API (rest-json) for the functions devenv runs:
Invoke with its edge cases, Get/ListFunctions with AWS's field set, Put/Get/Delete
FunctionConcurrency, and the routes the lambda process adds (the event source mappings'), so
boto3, the AWS CLI, their paginators and waiters work unchanged with AWS_ENDPOINT_URL_LAMBDA
pointing here. docs/aws-apis.md lists each call and how it differs from AWS."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Awaitable, Iterable, Mapping

from devenv.runtime.peers import PeerScreen
from devenv.compute.http import server as http1
from devenv.runtime.threads import in_thread
from devenv.compute.lambda_.code import CodeDigest, code_digest
from devenv.compute.lambda_.functions import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT, FunctionSpec
from devenv.compute.http.server import Request, Response, RouteHandler, Router, guarded, json_response
from devenv.compute.lambda_.invoke import InvalidRequestContent, InvocationType, InvokeError, PayloadTooLarge
from devenv.compute.lambda_.runtime import LambdaRuntime

API = "/2015-03-31/functions"
CONCURRENCY_PUT = "/2017-10-31/functions/{name}/concurrency"  # Put and Delete
CONCURRENCY_GET = "/2019-09-30/functions/{name}/concurrency"


LIST_FUNCTIONS_MOST = 50  # ListFunctions answers at most 50 a page, whatever MaxItems says
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


def configuration(spec: FunctionSpec, code: CodeDigest) -> dict:
    """GetFunctionConfiguration's answer for ``spec``, with AWS's field set (botocore's
    FunctionConfiguration shape); ``RevisionId`` changes with the code or the configuration."""
    data = {
        "FunctionName": spec.name, "FunctionArn": spec.arn, "Runtime": spec.runtime,
        "Role": f"arn:aws:iam::{spec.account}:role/{spec.name}-role", "Handler": spec.handler,
        "CodeSize": code.size, "Description": "", "Timeout": int(spec.timeout), "MemorySize": spec.memory_mb,
        "LastModified": code.last_modified, "CodeSha256": code.sha256, "Version": "$LATEST",
        "Environment": {"Variables": shown_environment(spec)},
        "TracingConfig": {"Mode": "PassThrough"},
        "State": "Active", "LastUpdateStatus": "Successful", "PackageType": "Zip", "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{spec.name}"},
    }
    if spec.dead_letter_queue:
        data["DeadLetterConfig"] = {"TargetArn": f"arn:aws:sqs:{spec.region}:{spec.account}:{spec.dead_letter_queue}"}
    data["RevisionId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(data, sort_keys=True)))
    return data


def _list_limit(query: Mapping[str, str], most: int) -> int:
    raw = query.get("MaxItems")
    if raw is None:
        return most
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 10000:
        raise InvokeError(400, "InvalidParameterValueException",
                          f"1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy constraint: "
                          f"Member must have value between 1 and 10000")
    return min(value, most)


def page(items: list, names: list[str], query: Mapping[str, str], most: int) -> tuple[list, str | None]:
    """One page of ``items`` (sorted by ``names``) from the ``Marker`` on, at most
    ``MaxItems`` (and ``most``); the marker of the next page, if any (the next item's name)."""
    limit = _list_limit(query, most)
    marker = query.get("Marker")
    start = next((i for i, name in enumerate(names) if name >= marker), len(names)) if marker else 0
    end = start + limit
    return items[start:end], names[end] if end < len(names) else None


class InvokeApi:
    """The Lambda API calls devenv answers (an ``http1`` handler; ``serve`` guards it);
    ``routes`` adds calls served elsewhere (the event source mappings'), as (method, path
    pattern, handler)."""

    def __init__(self, runtime: LambdaRuntime, routes: Iterable[tuple[str, str, RouteHandler]] = ()):
        self.runtime = runtime
        self._router = (Router()
                        .add("POST", API + "/{name}/invocations", self.invoke)
                        .add("GET", API, self.list_functions)
                        .add("GET", API + "/", self.list_functions)
                        .add("GET", API + "/{name}", self.get_function)
                        .add("GET", API + "/{name}/configuration", self.get_configuration)
                        .add("PUT", CONCURRENCY_PUT, self.put_concurrency)
                        .add("DELETE", CONCURRENCY_PUT, self.delete_concurrency)
                        .add("GET", CONCURRENCY_GET, self.get_concurrency))
        for method, pattern, handler in routes:
            self._router.add(method, pattern, handler)

    def __call__(self, request: Request) -> Response | Awaitable[Response]:
        return self._router(request)

    async def list_functions(self, request: Request) -> Response:
        pools = sorted(self.runtime.pools.values(), key=lambda p: p.spec.name)
        try:
            shown, marker = page(pools, [p.spec.name for p in pools], request.query, LIST_FUNCTIONS_MOST)
        except InvokeError as exc:
            return error_response(exc)
        digests = await in_thread(lambda: [code_digest(p.spec.code_dir) for p in shown])
        answer: dict = {"Functions": [configuration(p.spec, d) for p, d in zip(shown, digests)]}
        if marker is not None:
            answer["NextMarker"] = marker
        return json_response(answer)

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

    async def get_function(self, request: Request, name: str) -> Response:
        try:
            pool = self.runtime.pool(name)
        except InvokeError as exc:
            return error_response(exc)
        answer = {"Configuration": configuration(pool.spec, await in_thread(code_digest, pool.spec.code_dir)),
                  "Code": {"RepositoryType": "Local", "Location": str(pool.spec.code_dir)}}
        if pool.spec.reserved_concurrency is not None:
            answer["Concurrency"] = {"ReservedConcurrentExecutions": pool.spec.reserved_concurrency}
        return json_response(answer)

    def put_concurrency(self, request: Request, name: str) -> Response:
        """Reserved concurrency, enforced from the next invocation; local state, not written
        to devenv.yaml (the next start of the compute process takes the file's again)."""
        try:
            pool = self.runtime.pool(name)
            try:
                value = json.loads(request.body or b"{}").get("ReservedConcurrentExecutions")
            except (ValueError, AttributeError):
                value = None
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvokeError(400, "InvalidParameterValueException",
                                  "ReservedConcurrentExecutions must be an integer of 0 or more")
        except InvokeError as exc:
            return error_response(exc)
        pool.reserve(value)
        return json_response({"ReservedConcurrentExecutions": value})

    def delete_concurrency(self, request: Request, name: str) -> Response:
        try:
            pool = self.runtime.pool(name)
        except InvokeError as exc:
            return error_response(exc)
        pool.reserve(None)
        return Response(204, content_type=None)

    def get_concurrency(self, request: Request, name: str) -> Response:
        try:
            reserved = self.runtime.pool(name).spec.reserved_concurrency
        except InvokeError as exc:
            return error_response(exc)
        return json_response({} if reserved is None else {"ReservedConcurrentExecutions": reserved})

    async def get_configuration(self, request: Request, name: str) -> Response:
        try:
            pool = self.runtime.pool(name)
        except InvokeError as exc:
            return error_response(exc)
        return json_response(configuration(pool.spec, await in_thread(code_digest, pool.spec.code_dir)))


async def serve(runtime: LambdaRuntime, host: str, port: int, *, screen: PeerScreen | None = None,
                routes: Iterable[tuple[str, str, RouteHandler]] = ()) -> asyncio.base_events.Server:
    """The Invoke API on ``host:port``, for programs on this machine only (``runtime/guard.py``)."""
    handler = guarded(InvokeApi(runtime, routes), [("x-amzn-ErrorType", "AccessDeniedException")])
    return await http1.serve(handler, host, port, max_body=MAX_REQUEST, screen=screen, too_large=too_large)
