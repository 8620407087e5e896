"""The AWS APIs of the ECS process: ECS, ELBv2 and Application Auto Scaling, answered from the
scheduler's and the load balancer's own state for boto3, the AWS CLI and their waiters."""
