"""The proxy event (payload format 1.0) and the mapping of the function's answer to HTTP."""

from __future__ import annotations

import base64
import json
import re

import pytest

from devenv.compute.apigateway.event import (
    BAD_LAMBDA_RESPONSE,
    ApiSpec,
    GatewayError,
    HttpResponse,
    ProxyRequest,
    RequestIds,
    build_event,
    finish,
    map_response,
    new_request_ids,
    request_time,
    split_stage,
)
from devenv.compute.lambda_.invoke import InvokeResult
from devenv.config.model import ApiConfig

IDS = RequestIds(
    request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    extended_request_id="ZnCI1FmxoAMEZHQ=",
    trace_id="Root=1-5e0a1b2c-0123456789abcdef01234567",
    epoch_ms=1428582896000,
)
PNG = b"\x89PNG\r\n\x1a\n\x00\xff\xfe"


def spec(**api) -> ApiSpec:
    data = {"name": "nedlia", "stage": "local", "binary_media_types": ["image/png"],
            "routes": [{"method": "POST", "path": "/files/{bucket}/{proxy+}", "function": "upload"},
                       {"method": "ANY", "path": "/{proxy+}", "function": "catchall"},
                       {"method": "GET", "path": "/", "function": "root"}]}
    data.update(api)
    return ApiSpec.from_config(ApiConfig.model_validate(data), region="eu-west-1")


def request(**fields) -> ProxyRequest:
    data = dict(method="GET", raw_path="/local/", query_string="", headers=[("Host", "127.0.0.1:8080")],
                body=b"", source_ip="127.0.0.1", host="127.0.0.1:8080", local_port=8080)
    data.update(fields)
    return ProxyRequest(**data)


def event_for(api: ApiSpec, req: ProxyRequest) -> dict:
    match = api.routes.match(req.method, split_stage(req.raw_path)[1])
    assert match is not None
    return build_event(api, match, req, IDS)


# ---------------------------------------------------------------- the event


def test_full_event_with_repeated_headers_and_query_path_params_greedy_proxy_and_binary_body():
    api = spec()
    req = request(
        method="POST",
        raw_path="/local/files/photos/2024/07/cat%2B1.png",
        query_string="tag=a&tag=b+c&size=large&empty",
        headers=[
            ("Host", "127.0.0.1:8080"),
            ("User-Agent", "test/1.0"),
            ("Content-Type", "image/png"),
            ("Content-Length", str(len(PNG))),
            ("Connection", "keep-alive"),
            ("X-Custom", "one"),
            ("x-custom", "two"),
            ("X-Forwarded-For", "10.0.0.9"),
        ],
        body=PNG,
    )
    assert event_for(api, req) == {
        "resource": "/files/{bucket}/{proxy+}",
        "path": "/files/photos/2024/07/cat%2B1.png",
        "httpMethod": "POST",
        "headers": {
            "Host": "127.0.0.1:8080",
            "User-Agent": "test/1.0",
            "Content-Type": "image/png",
            "X-Custom": "two",
            "X-Amzn-Trace-Id": "Root=1-5e0a1b2c-0123456789abcdef01234567",
            "X-Forwarded-For": "10.0.0.9, 127.0.0.1",
            "X-Forwarded-Port": "8080",
            "X-Forwarded-Proto": "http",
        },
        "multiValueHeaders": {
            "Host": ["127.0.0.1:8080"],
            "User-Agent": ["test/1.0"],
            "Content-Type": ["image/png"],
            "X-Custom": ["one", "two"],
            "X-Amzn-Trace-Id": ["Root=1-5e0a1b2c-0123456789abcdef01234567"],
            "X-Forwarded-For": ["10.0.0.9, 127.0.0.1"],
            "X-Forwarded-Port": ["8080"],
            "X-Forwarded-Proto": ["http"],
        },
        "queryStringParameters": {"tag": "b c", "size": "large", "empty": ""},
        "multiValueQueryStringParameters": {"tag": ["a", "b c"], "size": ["large"], "empty": [""]},
        "pathParameters": {"bucket": "photos", "proxy": "2024/07/cat%2B1.png"},
        "stageVariables": None,
        "requestContext": {
            "resourceId": api.routes.match("POST", "/files/a/b").resource.resource_id,
            "resourcePath": "/files/{bucket}/{proxy+}",
            "httpMethod": "POST",
            "extendedRequestId": "ZnCI1FmxoAMEZHQ=",
            "requestTime": "09/Apr/2015:12:34:56 +0000",
            "path": "/local/files/photos/2024/07/cat%2B1.png",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "local",
            "domainPrefix": "127",
            "requestTimeEpoch": 1428582896000,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": "127.0.0.1",
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": "test/1.0",
                "user": None,
            },
            "domainName": "127.0.0.1:8080",
            "deploymentId": api.deployment_id,
            "apiId": api.api_id,
        },
        "body": base64.b64encode(PNG).decode(),
        "isBase64Encoded": True,
    }


def test_event_without_query_body_or_path_parameters_has_nulls():
    event = event_for(spec(), request(raw_path="/local"))
    assert event["resource"] == "/"
    assert event["path"] == "/"
    assert event["requestContext"]["path"] == "/local"
    for key in ("queryStringParameters", "multiValueQueryStringParameters", "pathParameters",
                "stageVariables", "body"):
        assert event[key] is None, key
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["identity"]["userAgent"] is None


def test_text_body_is_a_string_and_invalid_utf8_is_replaced():
    req = request(method="PUT", raw_path="/local/notes/1", headers=[("Content-Type", "application/json")],
                  body='{"a": "é"}'.encode())
    event = event_for(spec(), req)
    assert (event["body"], event["isBase64Encoded"]) == ('{"a": "é"}', False)
    event = event_for(spec(), request(method="PUT", raw_path="/local/x", body=b"ok\xff"))
    assert (event["body"], event["isBase64Encoded"]) == ("ok\ufffd", False)


@pytest.mark.parametrize("types, content_type, binary", [
    (["image/png"], "image/png", True),
    (["image/*"], "image/jpeg; charset=binary", True),
    (["*/*"], "application/json", True),
    (["image/png"], "IMAGE/PNG", True),
    (["image/png"], "image/jpeg", False),
    ([], "image/png", False),
    (["image/png"], None, False),
])
def test_binary_media_types_decide_base64_request_bodies(types, content_type, binary):
    headers = [] if content_type is None else [("Content-Type", content_type)]
    event = event_for(spec(binary_media_types=types), request(method="POST", raw_path="/local/x",
                                                              headers=headers, body=b"data"))
    assert event["isBase64Encoded"] is binary
    assert event["body"] == ("ZGF0YQ==" if binary else "data")


def test_trace_header_from_the_client_is_kept_and_leading_slashes_collapse():
    trace = ("X-Amzn-Trace-Id", "Root=1-00000001-aaaaaaaaaaaaaaaaaaaaaaaa")
    req = request(raw_path="//local//things", headers=[trace])
    event = event_for(spec(), req)
    assert event["path"] == "/things"
    assert event["requestContext"]["path"] == "/local//things"
    assert event["headers"]["X-Amzn-Trace-Id"] == "Root=1-00000001-aaaaaaaaaaaaaaaaaaaaaaaa"
    assert event["multiValueHeaders"]["X-Amzn-Trace-Id"] == ["Root=1-00000001-aaaaaaaaaaaaaaaaaaaaaaaa"]


def test_missing_host_falls_back_to_the_execute_api_domain():
    api = spec()
    event = event_for(api, request(host=None, headers=[]))
    assert event["requestContext"]["domainName"] == f"{api.api_id}.execute-api.eu-west-1.amazonaws.com"
    assert event["requestContext"]["domainPrefix"] == api.api_id


def test_generated_ids_have_aws_shapes():
    ids = new_request_ids(None, now=1428582896.5)
    assert re.fullmatch(r"Root=1-552671f0-[0-9a-f]{24}", ids.trace_id)  # 0x552671f0 == 1428582896
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", ids.request_id)
    assert re.fullmatch(r"[A-Za-z0-9+/]{15}=", ids.extended_request_id)
    assert ids.epoch_ms == 1428582896500
    assert new_request_ids("Root=1-x-y").trace_id == "Root=1-x-y"
    assert request_time(1428582896500) == "09/Apr/2015:12:34:56 +0000"
    api = spec()
    assert re.fullmatch(r"[a-z0-9]{10}", api.api_id)
    assert api.api_id == spec().api_id  # stable across restarts


# ---------------------------------------------------------------- the response


def answer(payload, *, accept: str | None = None, function_error: str | None = None, **api):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return map_response(InvokeResult("req-1", raw, function_error), spec(**api), accept)


def test_plain_response_gets_a_default_content_type():
    response = answer({"statusCode": 201, "body": "created"})
    assert response == HttpResponse(201, (("Content-Type", "application/json"),), b"created")


def test_missing_status_code_means_200_and_a_string_status_is_accepted():
    assert answer({"headers": {"x-a": "1"}}).status == 200
    assert answer({}).status == 200
    assert answer({}).body == b""
    assert answer({"statusCode": "201"}).status == 201
    assert answer({"statusCode": 404.0}).status == 404


def test_headers_and_multi_value_headers_are_both_sent_multi_values_first():
    response = answer({
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain", "x-Solo": "solo", "X-Flag": True},
        "multiValueHeaders": {"X-SOLO": ["m1", "m2"], "Vary": ["Accept", "Origin"]},
        "body": "hi",
    })
    assert response.headers == (
        ("X-SOLO", "m1"), ("X-SOLO", "m2"), ("X-SOLO", "solo"),
        ("Vary", "Accept"), ("Vary", "Origin"),
        ("Content-Type", "text/plain"), ("X-Flag", "true"),
    )


def test_cookies_travel_as_repeated_set_cookie_headers():
    response = answer({"statusCode": 302, "multiValueHeaders": {
        "Set-Cookie": ["a=1; Path=/", "b=2; HttpOnly"], "Location": ["/home"]}})
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["a=1; Path=/", "b=2; HttpOnly"]
    assert response.header("location") == "/home"


def test_framing_headers_from_the_function_are_remapped_or_dropped():
    response = answer({"headers": {"Content-Length": "99", "Date": "x", "Server": "me",
                                   "Connection": "close", "Transfer-Encoding": "chunked"}})
    names = [name for name, _ in response.headers]
    assert names == ["Content-Type", "x-amzn-Remapped-Content-Length", "x-amzn-Remapped-Date",
                     "x-amzn-Remapped-Server", "x-amzn-Remapped-Connection"]


def test_base64_body_is_decoded_when_the_first_accept_type_is_binary():
    payload = {"statusCode": 200, "headers": {"Content-Type": "image/png"},
               "body": base64.b64encode(PNG).decode(), "isBase64Encoded": True}
    assert answer(payload, accept="image/png").body == PNG
    assert answer(payload, accept="image/png, text/html").body == PNG
    # Not a binary Accept (or no binary media types): AWS sends the base64 text as it is.
    assert answer(payload, accept="text/html, image/png").body == base64.b64encode(PNG)
    assert answer(payload, accept="image/png", binary_media_types=[]).body == base64.b64encode(PNG)
    assert answer(payload, accept=None).body == base64.b64encode(PNG)


def test_undecodable_base64_body_is_a_500():
    response = answer({"body": "not base64!", "isBase64Encoded": True}, accept="image/png")
    assert isinstance(response, GatewayError)
    assert (response.status, response.body) == (500, b'{"message": "Internal server error"}')


@pytest.mark.parametrize("payload", [
    b"not json",
    b"",
    "just a string",
    [{"statusCode": 200}],
    None,
    {"statusCode": 200, "wrongValue": "value"},
    {"statusCode": 200, "cookies": ["a=1"]},
    {"statusCode": "abc"},
    {"statusCode": True},
    {"statusCode": 42},
    {"statusCode": [200]},
    {"headers": ["x"]},
    {"headers": {"x-a": 1}},
    {"headers": {"x-a": None}},
    {"multiValueHeaders": {"x-a": "value1"}},
    {"multiValueHeaders": {"x-a": ["ok", 2]}},
    {"multiValueHeaders": []},
    {"body": {"a": 1}},
    {"body": 12},
    {"isBase64Encoded": "yes"},
    {"errorMessage": "boom", "errorType": "Exception"},
], ids=repr)
def test_malformed_proxy_responses_are_502(payload):
    response = answer(payload)
    assert isinstance(response, GatewayError)
    assert response.status == 502
    assert response.response().body == b'{"message": "Internal server error"}'
    assert response.response().header("x-amzn-ErrorType") == "InternalServerErrorException"
    assert response.reason


def test_null_headers_are_allowed():
    assert answer({"statusCode": 200, "headers": None, "multiValueHeaders": None}).status == 200


def test_function_error_is_502_whatever_the_payload():
    error = {"errorMessage": "boom", "errorType": "ValueError", "requestId": "r", "stackTrace": []}
    response = answer(error, function_error="Unhandled")
    assert response == BAD_LAMBDA_RESPONSE.because(response.reason)
    assert "customer function error" in response.reason
    assert answer({"statusCode": 200}, function_error="Unhandled").status == 502


def test_finish_adds_request_id_apigw_id_and_trace_headers():
    final = finish(HttpResponse(200, (("Content-Type", "text/plain"),), b"ok"), IDS)
    assert final.headers == (
        ("Content-Type", "text/plain"),
        ("x-amzn-RequestId", IDS.request_id),
        ("x-amz-apigw-id", IDS.extended_request_id),
        ("X-Amzn-Trace-Id", IDS.trace_id),
    )
    forbidden = finish(GatewayError(403, b'{"message":"Forbidden"}', "ForbiddenException"), None)
    assert forbidden.headers == (("Content-Type", "application/json"),
                                 ("x-amzn-ErrorType", "ForbiddenException"))
