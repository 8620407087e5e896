"""The emulator answers programs on this machine and the web pages it is told to, nothing
else: a real moto launcher and a real HTTP client sending what a hostile page's browser
would (a foreign Origin, a preflight, a DNS-rebinding Host); boto3 keeps working."""

from __future__ import annotations

import http.client
from urllib.parse import urlencode

import boto3
import pytest

from tests.integration.aws.conftest import START_DEADLINE, MotoServer

APP = "http://app.example:3000"  # a local web app's origin, allowed by config (emulator.cors_origins)
FORM = {"Content-Type": "application/x-www-form-urlencoded",  # a page's fetch signs as the JS SDK does
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, "
                         "SignedHeaders=host, Signature=x"}


@pytest.fixture(scope="module")
def emulator():
    server = MotoServer("--cors-origin", APP, "--allow-host", "emulator")
    try:
        server.wait_ready(START_DEADLINE)
        yield server
    finally:
        server.stop()


def send(server: MotoServer, method: str, headers: dict, body: bytes = b"") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(method, "/", body=body, headers=headers)
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def form(action: str, **fields) -> bytes:
    return urlencode({"Action": action, "Version": "2012-11-05", **fields}).encode()


def queues(server: MotoServer) -> list[str]:
    sqs = boto3.client("sqs", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    return sqs.list_queues().get("QueueUrls", [])


def test_a_cross_site_page_can_neither_write_nor_be_allowed_to_read(emulator):
    # a form POST needs no preflight: it must be refused before moto runs it
    answer = send(emulator, "POST", {**FORM, "Origin": "http://evil.example"},
                  form("CreateQueue", QueueName="planted"))
    assert answer.status == 403 and b"cross-site" in answer.body
    assert not any(url.endswith("/planted") for url in queues(emulator))
    preflight = send(emulator, "OPTIONS", {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status == 403 and preflight.getheader("Access-Control-Allow-Origin") is None
    assert send(emulator, "POST", {**FORM, "Origin": "null"}, form("ListQueues")).status == 403


def test_a_rebinding_host_is_refused(emulator):
    answer = send(emulator, "POST", {**FORM, "Host": "attacker.example"},
                  form("ListQueues"))
    assert answer.status == 403 and b"DNS-rebinding" in answer.body


@pytest.mark.parametrize("origin", ["http://localhost:5173", "http://127.0.0.1:8080", APP])
def test_loopback_pages_and_the_configured_app_are_allowed(emulator, origin):
    answer = send(emulator, "POST", {**FORM, "Origin": origin, "Sec-Fetch-Site": "cross-site"}, form("ListQueues"))
    assert answer.status == 200 and answer.getheader("Access-Control-Allow-Origin") == origin


def test_boto3_and_the_stacks_containers_still_work(emulator):
    sqs = boto3.client("sqs", endpoint_url=emulator.url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    sqs.create_queue(QueueName="kept")
    assert any(url.endswith("/kept") for url in queues(emulator))
    inside = send(emulator, "POST", {**FORM, "Host": "emulator:5000"},
                  form("ListQueues"))  # a container calling the emulator by its alias
    assert inside.status == 200
