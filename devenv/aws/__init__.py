"""The managed plane on the AWS emulator: S3 buckets, SQS queues, EventBridge buses and rules.

Entry points live in ``devenv.aws.deploy`` (``deploy``, ``plan_only``, ``DeployReport``,
and ``AwsEndpoint`` re-exported from ``endpoint``). This package imports nothing on purpose:
``from devenv.aws import deploy`` yields that module, and boto3 is imported only when an
emulator is actually called, so the CLI starts fast.
"""
