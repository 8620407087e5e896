"""What the three Nedlia services share: 12-factor settings, the Postgres pool, EventBridge
publishing, X-Amzn-Trace-Id handling, numbers as JSON and the FastAPI scaffolding (health
routes, JSON errors). Pure standard library except where a module says otherwise."""
