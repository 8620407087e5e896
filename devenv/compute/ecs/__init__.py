"""ECS: the scheduler that keeps each service's tasks running (processes, or containers with
runtime: docker), its pure decisions (rolling deployments, target tracking, failing starts)
and the control API's client."""
