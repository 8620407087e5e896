"""An HTTP endpoint compatible with AWS Lambda's Invoke API (and enough of GetFunction /
ListFunctions for tools that look a function up), so boto3 and the AWS CLI work unchanged
with AWS_ENDPOINT_URL_LAMBDA pointing here."""

from __future__ import annotations

import base64
from urllib.parse import unquote

from aiohttp import web

from .functions import FunctionSpec
from .invoke import InvocationType, InvokeError
from .lambda_runtime import LambdaRuntime, log_tail

API = "/2015-03-31/functions"


def _error(exc: InvokeError) -> web.Response:
    return web.Response(status=exc.status, body=exc.body(), content_type="application/json",
                        headers={"x-amzn-ErrorType": exc.error_type})


def _configuration(spec: FunctionSpec) -> dict:
    return {
        "FunctionName": spec.name, "FunctionArn": spec.arn, "Runtime": spec.runtime, "Handler": spec.handler,
        "Timeout": int(spec.timeout), "MemorySize": spec.memory_mb, "Version": "$LATEST", "State": "Active",
        "LastUpdateStatus": "Successful", "PackageType": "Zip", "Architectures": ["x86_64"],
        "Role": f"arn:aws:iam::{spec.account}:role/{spec.name}-role",
        "Environment": {"Variables": dict(spec.environment)},
    }


def make_app(runtime: LambdaRuntime) -> web.Application:
    app = web.Application(client_max_size=7 * 1024 * 1024)

    async def invoke(request: web.Request) -> web.Response:
        name = unquote(request.match_info["name"])
        qualifier = request.query.get("Qualifier")
        kind = request.headers.get("X-Amz-Invocation-Type", InvocationType.REQUEST_RESPONSE.value)
        try:
            pool = runtime.pool(name)
            if qualifier not in (None, "$LATEST"):
                raise InvokeError(404, "ResourceNotFoundException",
                                  f"Function not found: {pool.spec.arn}:{qualifier}")
            payload = await request.read()
            trace = request.headers.get("X-Amzn-Trace-Id")
            if kind == InvocationType.DRY_RUN.value:
                return web.Response(status=204, headers={"x-amzn-RequestId": request.headers.get(
                    "amz-sdk-invocation-id", "")})
            if kind == InvocationType.EVENT.value:
                request_id = await runtime.invoke_async(pool.spec.name, payload, trace_id=trace)
                return web.Response(status=202, headers={"x-amzn-RequestId": request_id})
            if kind != InvocationType.REQUEST_RESPONSE.value:
                raise InvokeError(400, "InvalidParameterValueException",
                                  f"Unsupported invocation type {kind}")
            client_context = request.headers.get("X-Amz-Client-Context")
            if client_context:
                client_context = base64.b64decode(client_context).decode(errors="replace")
            result = await runtime.invoke(pool.spec.name, payload, trace_id=trace, client_context=client_context)
        except InvokeError as exc:
            return _error(exc)
        headers = {"x-amzn-RequestId": result.request_id, "X-Amz-Executed-Version": result.executed_version}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if request.headers.get("X-Amz-Log-Type") == "Tail":
            headers["X-Amz-Log-Result"] = log_tail(_recent_log(pool.spec, result.request_id))
        return web.Response(status=200, body=result.payload, headers=headers, content_type="application/json")

    async def get_function(request: web.Request) -> web.Response:
        try:
            pool = runtime.pool(unquote(request.match_info["name"]))
        except InvokeError as exc:
            return _error(exc)
        config = _configuration(pool.spec)
        if request.path.endswith("/configuration"):
            return web.json_response(config)
        return web.json_response({"Configuration": config, "Code": {"RepositoryType": "Local",
                                                                    "Location": str(pool.spec.code_dir)}})

    async def list_functions(request: web.Request) -> web.Response:
        return web.json_response({"Functions": [_configuration(p.spec) for p in runtime.pools.values()]})

    app.router.add_post(API + "/{name}/invocations", invoke)
    app.router.add_get(API + "/{name}/configuration", get_function)
    app.router.add_get(API + "/{name}", get_function)
    app.router.add_get(API + "/", list_functions)
    app.router.add_get(API, list_functions)
    return app


def _recent_log(spec: FunctionSpec, request_id: str) -> bytes:
    """The function log's lines from this request's START to its REPORT (best effort)."""
    try:
        with open(spec.log_file, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return b""
    start = data.rfind(f"START RequestId: {request_id}".encode())
    return data[start:] if start >= 0 else data[-4096:]



