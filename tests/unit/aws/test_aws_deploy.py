"""deploy() and plan_only() over the in-memory ManagedPlaneApi."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from devenv.aws.deploy import AwsEndpoint, deploy, plan_only
from devenv.aws.memory import InMemoryPlaneApi
from devenv.aws.resources import Bucket
from devenv.errors import DeployError

EP = AwsEndpoint("memory://", "us-east-1")


def test_deploy_applies_the_plan_and_reports_it(nedlia):
    api = InMemoryPlaneApi()
    report = deploy(nedlia, EP, api=api)
    assert report.applied and report.changed
    assert list(report.actions) == api.applied
    assert len(report.changes) == 11 and report.notices == ()
    assert report.lines()[0] == "+ bucket nedlia-notifications"
    assert {q.name for q in api.plane.queues} == {
        "nedlia-validation", "nedlia-validation-dlq", "nedlia-notification", "nedlia-notification-dlq"}
    assert all(q.stack == "nedlia" for q in api.plane.queues)


def test_plan_only_changes_nothing(nedlia):
    api = InMemoryPlaneApi()
    report = plan_only(nedlia, EP, api=api)
    assert len(report.changes) == 11
    assert not report.applied and not report.changed
    assert api.applied == [] and api.plane.queues == ()


def test_a_failing_action_names_its_resource_and_what_was_applied(nedlia):
    api = InMemoryPlaneApi(fail_on={"queue nedlia-validation"})
    with pytest.raises(DeployError) as caught:
        deploy(nedlia, EP, api=api)
    error = caught.value
    assert error.message.startswith("queue nedlia-validation: '+ queue nedlia-validation' failed")
    assert error.details[-1] == "applied before the failure: + queue nedlia-validation-dlq"
    assert api.plane.bus("nedlia-events") is None  # nothing after the failure was attempted


def test_a_deploy_that_only_keeps_things_changes_nothing(nedlia):
    api = InMemoryPlaneApi()
    deploy(nedlia, EP, api=api)
    api.plane = replace(api.plane, buckets=(*api.plane.buckets,
                                            Bucket("nedlia-old", stack="nedlia", empty=False)))
    report = deploy(nedlia, EP, api=api)
    assert report.lines() == ["! bucket nedlia-old kept: it still holds objects"]
    assert not report.changed and report.changes == ()


def test_account_of_the_endpoint_is_used_in_policies(nedlia):
    api = InMemoryPlaneApi(account="000000000000")
    deploy(nedlia, EP, api=api)
    policy = json.loads(api.plane.queue("nedlia-validation").attributes["Policy"])
    assert ":000000000000:" in policy["Statement"][0]["Resource"]


def test_region_mismatch_is_refused(nedlia):
    with pytest.raises(DeployError, match="serves eu-west-1"):
        deploy(nedlia, AwsEndpoint("memory://", "eu-west-1"), api=InMemoryPlaneApi())


def test_importing_deploy_does_not_import_boto3():
    import subprocess
    import sys

    code = ("import sys, devenv.aws.deploy, devenv.aws.api, devenv.aws.plan; "
            "print(any(m.split('.')[0] in ('boto3', 'botocore', 'typer', 'rich') for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
