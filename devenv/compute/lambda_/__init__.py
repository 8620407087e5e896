"""Lambda: functions resolved from the config, their instances (processes or containers
running awslambdaric) behind the Runtime API, the pools that hand them invocations, and the
Invoke API. Owns nothing of ECS."""
