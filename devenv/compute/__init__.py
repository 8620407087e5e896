"""devenv's own compute plane: the Lambda runtime, its Invoke API, API Gateway, event source
mappings and EventBridge Lambda targets (ECS and the ALB come later)."""
