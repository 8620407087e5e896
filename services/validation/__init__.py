"""validation-service: decides whether a placement fits its video."""
