"""devenv's moto launcher: moto's own application, served with keep-alive and caches."""

from __future__ import annotations

import http.client
import json

from devenv.infra import moto_server

SQS_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, "
                     "SignedHeaders=host, Signature=x",
}


def _call(conn: http.client.HTTPConnection, action: str, body: dict) -> dict:
    conn.request("POST", "/", body=json.dumps(body), headers={**SQS_HEADERS, "X-Amz-Target": f"AmazonSQS.{action}"})
    response = conn.getresponse()
    payload = response.read()
    assert response.status == 200, payload
    assert (response.getheader("Connection") or "").lower() != "close"
    return json.loads(payload)


def test_one_connection_serves_many_requests(moto_server):
    conn = http.client.HTTPConnection("127.0.0.1", moto_server.port, timeout=5)
    _call(conn, "CreateQueue", {"QueueName": "keepalive"})
    conn.connect = None  # a reconnect would now fail: every request below must reuse the socket
    url = _call(conn, "GetQueueUrl", {"QueueName": "keepalive"})["QueueUrl"]
    for n in range(5):
        _call(conn, "SendMessage", {"QueueUrl": url, "MessageBody": f"m{n}"})
    got = _call(conn, "ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10})
    assert sorted(m["Body"] for m in got["Messages"]) == [f"m{n}" for n in range(5)]
    conn.close()


def test_memoised_helpers_give_moto_s_answers():
    from moto.core import utils

    original = getattr(utils.camelcase_to_underscores, "__wrapped__", utils.camelcase_to_underscores)
    moto_server.application()
    assert getattr(utils.camelcase_to_underscores, "__wrapped__", None) is original
    for name in ("MessageRetentionPeriod", "VisibilityTimeout", "ApproximateNumberOfMessagesNotVisible"):
        assert utils.camelcase_to_underscores(name) == original(name)
    from moto.sqs.models import camelcase_to_underscores as used_by_sqs

    assert used_by_sqs is utils.camelcase_to_underscores


def test_a_new_client_is_served_while_many_idle_keep_alive_connections_are_open(moto_server):
    # Every poller, task, Lambda instance and shipper keeps its connections open between
    # calls. waitress stops accepting past its connection_limit (100 by default) until idle
    # ones time out (channel_timeout, 120 s): a new client then hung for minutes.
    idle = []
    try:
        for _ in range(150):
            conn = http.client.HTTPConnection("127.0.0.1", moto_server.port, timeout=5)
            _call(conn, "ListQueues", {})
            idle.append(conn)
        late = http.client.HTTPConnection("127.0.0.1", moto_server.port, timeout=5)  # a timeout fails the test
        assert _call(late, "CreateQueue", {"QueueName": "late"})["QueueUrl"].endswith("/late")
        late.close()
    finally:
        for conn in idle:
            conn.close()
