"""The two AWS protocols these APIs speak, from botocore's service models: JSON 1.1 (ECS,
Application Auto Scaling: ``X-Amz-Target: <prefix>.<Operation>``, a JSON body, errors as
``{"__type": code, "message": ...}``) and the query protocol (ELBv2: a form body with
``Action``, ``X.member.N`` lists, XML answers in the operation's result wrapper).

Pure: requests in, ``Response`` out; the XML is written by walking the operation's output
shape, so element names, list wrappers and value formats are botocore's own."""

from __future__ import annotations

import datetime
import functools
import json
import uuid
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from devenv.compute.http.server import Request, Response

JSON_TYPE = "application/x-amz-json-1.1"


class ApiError(Exception):
    """An AWS error: the HTTP status, AWS's error code and message."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def request_id() -> str:
    return str(uuid.uuid4())


# ------------------------------------------------------------------ JSON 1.1


def json_params(request: Request) -> dict:
    """The request's JSON object (an empty body is ``{}``); ApiError when it is not one."""
    if not request.body.strip():
        return {}
    try:
        params = json.loads(request.body)
    except ValueError:
        raise ApiError("SerializationException", "the request body is not JSON") from None
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "the request body is not a JSON object")
    return params


def json_answer(data: dict) -> Response:
    return Response(200, json.dumps(data, default=_epoch).encode(), [("x-amzn-RequestId", request_id())],
                    content_type=JSON_TYPE)


def json_error(error: ApiError) -> Response:
    body = {"__type": error.code, "message": error.message}
    return Response(error.status, json.dumps(body).encode(),
                    [("x-amzn-RequestId", request_id()), ("x-amzn-ErrorType", error.code)], content_type=JSON_TYPE)


def _epoch(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# ------------------------------------------------------------------ query protocol


def query_params(request: Request) -> dict[str, str]:
    """The form body's parameters (and the URL's, as AWS accepts both)."""
    params = dict(request.query)
    params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def query_list(params: dict[str, str], name: str) -> list[str]:
    """``Name.member.1``, ``Name.member.2``, ... in order."""
    prefix = f"{name}.member."
    numbered = sorted((int(key[len(prefix):]), value) for key, value in params.items()
                      if key.startswith(prefix) and key[len(prefix):].isdigit())
    return [value for _, value in numbered]


def query_structs(params: dict[str, str], name: str) -> list[dict[str, str]]:
    """``Name.member.N.Field`` as one dict per N, in order."""
    prefix = f"{name}.member."
    found: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        if key.startswith(prefix):
            number, _, field = key[len(prefix):].partition(".")
            if number.isdigit() and field:
                found.setdefault(int(number), {})[field] = value
    return [found[n] for n in sorted(found)]


@functools.lru_cache(maxsize=None)
def service_model(service: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def xml_answer(service: str, operation: str, data: dict) -> Response:
    """The query protocol's answer: ``<OpResponse xmlns=...><OpResult>...`` from the output shape."""
    model = service_model(service)
    shape = model.operation_model(operation).output_shape
    namespace = model.metadata.get("xmlNamespace", "")
    wrapper = shape.serialization.get("resultWrapper", f"{operation}Result") if shape is not None else None
    inner = _members(shape, data) if shape is not None else ""
    result = f"<{wrapper}>{inner}</{wrapper}>" if wrapper else ""
    body = (f'<{operation}Response xmlns="{namespace}">{result}'
            f"<ResponseMetadata><RequestId>{request_id()}</RequestId></ResponseMetadata></{operation}Response>")
    return Response(200, body.encode(), content_type="text/xml")


def xml_error(service: str, error: ApiError) -> Response:
    namespace = service_model(service).metadata.get("xmlNamespace", "")
    body = (f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{escape(error.code)}</Code>'
            f"<Message>{escape(error.message)}</Message></Error><RequestId>{request_id()}</RequestId></ErrorResponse>")
    return Response(error.status, body.encode(), content_type="text/xml")


def _members(shape, data: dict) -> str:
    parts = []
    for name, member in shape.members.items():
        if name in data and data[name] is not None:
            parts.append(_element(member.serialization.get("name", name), member, data[name]))
    unknown = set(data) - set(shape.members)
    if unknown:
        raise ValueError(f"{shape.name} has no member {sorted(unknown)}")
    return "".join(parts)


def _element(tag: str, shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "structure":
        inner = _members(shape, value)
    elif kind == "list":
        item = shape.member.serialization.get("name", "member")
        inner = "".join(_element(item, shape.member, v) for v in value)
        if shape.serialization.get("flattened"):
            return inner
    elif kind == "map":
        inner = "".join(f"<entry>{_element('key', shape.key, k)}{_element('value', shape.value, v)}</entry>"
                        for k, v in value.items())
    elif kind == "boolean":
        inner = "true" if value else "false"
    elif kind == "timestamp":
        moment = value if isinstance(value, datetime.datetime) else datetime.datetime.fromtimestamp(
            value, datetime.timezone.utc)
        inner = moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    else:
        inner = escape(str(value))
    return f"<{tag}>{inner}</{tag}>"
