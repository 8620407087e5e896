"""One stack for the package's tests of the compute plane through the stack (the Invoke API,
the Lambda API calls, API Gateway, event sources): started once, when a test first asks."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
from botocore.config import Config
import pytest

from tests.integration.conftest import Project, make_project_dir

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "functions"

STACK = """\
name: computeit
infra:
  postgres: false
  redis: false
queues:
  failures: {}
  jobs:
    visibility_timeout: 1
    dlq: jobs-dlq
    max_receive_count: 2
  jobs-dlq: {}
  paced:
    visibility_timeout: 2
  inbox: {}
event_buses:
  it-events:
    rules:
      to-echo:
        pattern: {source: [it.source]}
        targets:
          - function: recorder
      to-queues:
        pattern: {source: [it.queued]}
        targets:
          - queue: paced
          - queue: inbox
functions:
  recorder:
    handler: handlers.record
    code: functions/basic
  batcher:
    handler: handlers.batch
    code: functions/basic
    timeout: 1
    events:
      - sqs: {queue: jobs, batch_size: 10, report_batch_item_failures: true}
  echo:
    handler: handlers.echo
    code: functions/basic
    environment: {GREETING: hello}
  boom:
    handler: handlers.boom
    code: functions/basic
    on_failure: {queue: failures}
  web:
    handler: handlers.web
    code: functions/basic
  single:
    handler: handlers.sleepy
    code: functions/basic
    timeout: 10
    reserved_concurrency: 1
  pacer:
    handler: handlers.record
    code: functions/basic
    timeout: 2
    events:
      - sqs: {queue: paced, batch_size: 5}
api:
  stage: local
  routes:
    - {method: GET, path: "/hello/{name}", function: web}
    - {method: ANY, path: "/broken", function: boom}
"""


@pytest.fixture(scope="package")
def stack():
    root = make_project_dir()
    shutil.copytree(FIXTURES, root / "functions")
    project = Project(root, STACK)
    project.devenv("up")
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


def lambda_client(env, *, retries: bool = True):
    """boto3's Lambda client for the stack (``retries=False``: one attempt per call, so a
    throttle reaches the test)."""
    config = Config(retries={"total_max_attempts": 1}) if not retries else None
    return boto3.client("lambda", endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"], region_name=env["AWS_REGION"],
                        aws_access_key_id="test", aws_secret_access_key="test", config=config)


def aws(env, service):
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id="test", aws_secret_access_key="test")
