"""The internal ALB: listener rules and target health (pure), framing decisions, target
groups with health checks and draining, and the streaming HTTP/1.1 proxy."""
