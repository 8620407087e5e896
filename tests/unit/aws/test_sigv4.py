"""devenv's small SigV4 signer gives the headers botocore's signer gives the same request."""

from __future__ import annotations

import datetime as dt

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from devenv.aws.sigv4 import signed_headers

NOW = dt.datetime(2026, 12, 7, 16, 41, 38, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("region,host,body", [
    ("us-east-1", "127.0.0.1:4566", b'{"logGroupName":"/aws/lambda/api"}'),
    ("eu-west-3", "localhost", b""),
    ("ap-south-1", "127.0.0.1:5000", '{"message":"  spaced   out é"}'.encode()),
])
def test_the_signature_is_botocores(monkeypatch, region, host, body):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.PutLogEvents"}
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    request = AWSRequest("POST", f"http://{host}/", data=body, headers=dict(headers))
    botocore.auth.SigV4Auth(Credentials("test", "secret"), "logs", region).add_auth(request)

    ours = signed_headers(host=host, path="/", region=region, service="logs", headers=headers, body=body,
                          access_key="test", secret_key="secret", now=NOW)
    assert ours == dict(request.headers.items())
    assert ours["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential=test/20261207/{region}/logs/aws4_request, ")
