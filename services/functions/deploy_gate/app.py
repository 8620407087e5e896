"""The CodeDeploy hook of notification-service's blue/green deployments (BeforeAllowTraffic):
a deploy gate. An operator closes it by writing ``closed`` to s3://$GATE_BUCKET/$GATE_KEY;
while closed, a deployment is vetoed before production traffic moves, and CodeDeploy rolls
it back. The hook reports its verdict as every CodeDeploy hook must, with
PutLifecycleEventHookExecutionStatus, for the DeploymentId and LifecycleEventHookExecutionId
CodeDeploy invoked it with."""

import os

import boto3


def gate_closed() -> bool:
    s3 = boto3.client("s3")
    try:
        body = s3.get_object(Bucket=os.environ["GATE_BUCKET"], Key=os.environ["GATE_KEY"])["Body"].read()
    except s3.exceptions.NoSuchKey:
        return False
    return body.decode(errors="replace").strip() == "closed"


def handler(event, context):
    closed = gate_closed()
    boto3.client("codedeploy").put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"], lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status="Failed" if closed else "Succeeded")
    return {"deployment": event["DeploymentId"], "gate": "closed" if closed else "open"}
