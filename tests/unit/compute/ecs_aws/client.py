"""An in-process AWS client for the ECS process's AWS APIs: botocore serialises the request
and parses the answer (as boto3 would over HTTP), and every answer is checked against the
operation's output shape."""

from __future__ import annotations

import inspect
from urllib.parse import urlencode

import botocore.parsers
import botocore.serialize
import botocore.session

from devenv.compute.http.server import Request
from tests.support import assert_output_shape


class AwsError(Exception):
    def __init__(self, code: str, message: str, status: int):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


_MODELS: dict = {}


def model(service: str):
    if service not in _MODELS:
        _MODELS[service] = botocore.session.get_session().get_service_model(service)
    return _MODELS[service]


async def call(handler, api: str, operation: str, **params) -> dict:
    service_model = model(api)
    protocol = service_model.resolved_protocol  # what boto3 speaks: JSON before CBOR (CodeDeploy offers both)
    op = service_model.operation_model(operation)
    serialized = botocore.serialize.create_serializer(protocol).serialize_to_request(params, op)
    body = serialized["body"]
    if isinstance(body, dict):
        body = urlencode(body)
    if isinstance(body, str):
        body = body.encode()
    headers = {k.lower(): v for k, v in serialized["headers"].items()}
    headers.setdefault("host", "127.0.0.1:9999")
    response = handler(Request("POST", "/", {}, headers, body or b""))
    if inspect.isawaitable(response):
        response = await response
    answer_headers = dict(response.headers)
    if response.content_type:
        answer_headers["content-type"] = response.content_type
    parsed = botocore.parsers.create_parser(protocol).parse(
        {"body": response.body, "headers": answer_headers, "status_code": response.status}, op.output_shape)
    if response.status >= 300:
        error = parsed.get("Error", {})
        raise AwsError(error.get("Code"), error.get("Message"), response.status)
    return assert_output_shape(api, operation, parsed)
