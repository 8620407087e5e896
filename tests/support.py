"""Small helpers shared by the test packages."""

from __future__ import annotations


class ListSink:
    """A span sink that keeps what it is given (devenv.observe.spans.SpanSink)."""

    def __init__(self):
        self.spans = []

    def record(self, span):
        self.spans.append(span)


def output_shape_errors(service: str, operation: str, response: dict) -> list[str]:
    """What in a boto3 response (parsed by botocore) does not fit the operation's output shape
    in botocore's service model: a required member missing, a member the model does not know,
    a value of the wrong type or outside its enum. ``ResponseMetadata`` is boto3's own."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).output_shape
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    return _shape_errors(shape, body, operation) if shape is not None else (
        [f"{operation}: expected no output, got {sorted(body)}"] if body else [])


def assert_output_shape(service: str, operation: str, response: dict) -> dict:
    """Fails with every mismatch ``output_shape_errors`` finds; returns the response."""
    errors = output_shape_errors(service, operation, response)
    assert not errors, f"{service} {operation} answer does not fit botocore's output shape:\n" + "\n".join(errors)
    return response


def _shape_errors(shape, value, path: str) -> list[str]:
    import datetime

    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected a structure ({shape.name}), got {type(value).__name__}"]
        errors = [f"{path}: required member {name!r} missing" for name in shape.required_members
                  if name not in value]
        for key, item in value.items():
            member = shape.members.get(key)
            if member is None:
                errors.append(f"{path}: unknown member {key!r} (not in {shape.name})")
            else:
                errors += _shape_errors(member, item, f"{path}.{key}")
        return errors
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [e for i, item in enumerate(value) for e in _shape_errors(shape.member, item, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {type(value).__name__}"]
        return [e for k, item in value.items()
                for e in _shape_errors(shape.key, k, f"{path} key") + _shape_errors(shape.value, item, f"{path}[{k!r}]")]
    expected = {"string": str, "boolean": bool, "timestamp": datetime.datetime, "blob": (bytes, bytearray),
                "integer": int, "long": int, "double": (int, float), "float": (int, float)}.get(kind)
    if expected is None:
        return []
    if not isinstance(value, expected) or (kind in ("integer", "long", "double", "float") and isinstance(value, bool)):
        return [f"{path}: expected {kind}, got {type(value).__name__} {value!r}"]
    enum = shape.enum if kind == "string" else None
    if enum and value not in enum:
        return [f"{path}: {value!r} is not one of {enum}"]
    return []
