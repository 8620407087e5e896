"""Small helpers shared by the test packages."""

from __future__ import annotations

import datetime
import json
import os


def missing(what: str) -> None:
    """A prerequisite of a test is not on this machine: skip, with ``what`` as the reason,
    except under CI (``CI`` set), where a skipped check would claim what it never checked,
    so the test fails instead."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"CI is set and this test needs what is missing: {what}", pytrace=False)
    pytest.skip(what)


def aws_cli(env: dict[str, str], *args: str, timeout: float = 120) -> dict | None:
    """The AWS CLI (v1, the test extra's) with ``env`` (`devenv env`'s variables) over this
    environment: no endpoint on the command line, as a user runs it; its JSON answer."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "awscli", *args, "--output", "json"], capture_output=True,
                            text=True, timeout=timeout, env={**os.environ, **env, "AWS_PAGER": ""})
    assert result.returncode == 0, f"aws {' '.join(args)} exited {result.returncode}: {result.stderr}"
    return json.loads(result.stdout) if result.stdout.strip() else None


AWS_CLI_V2 = "/usr/bin/aws"  # Debian's awscli package: `aws logs tail` exists only in v2


def aws_v2(env: dict[str, str], *args: str, missing_ok: bool = False) -> str:
    """The AWS CLI v2 with ``env`` (`devenv env`'s variables) and nothing else of this
    environment; its standard output. AWS_ENDPOINT_URL_<SERVICE> is read from v2.13 on;
    Debian's 2.9 predates it, so for that one the Logs endpoint goes on the command line.
    ``missing_ok``: a ResourceNotFoundException (a log group not there yet) answers ""."""
    import re
    import subprocess

    version = ""
    if os.path.exists(AWS_CLI_V2):
        version = subprocess.run([AWS_CLI_V2, "--version"], capture_output=True, text=True, timeout=60).stdout
    found = re.match(r"aws-cli/(\d+)\.(\d+)", version)
    if not found or int(found.group(1)) < 2:
        missing(f"the AWS CLI v2 at {AWS_CLI_V2} (found {version.split(' ')[0] or 'none'}): apt-get install awscli")
    assert found is not None
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **env, "AWS_PAGER": ""}
    endpoint = []
    if (int(found.group(1)), int(found.group(2))) < (2, 13):
        endpoint = ["--endpoint-url", env["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"]]
    result = subprocess.run([AWS_CLI_V2, *endpoint, *args], capture_output=True, text=True, timeout=120, env=env)
    if missing_ok and result.returncode != 0 and "ResourceNotFoundException" in result.stderr:
        return ""
    assert result.returncode == 0, f"aws {' '.join(args)} exited {result.returncode}: {result.stderr}"
    return result.stdout


class ListSink:
    """A span sink that keeps what it is given (devenv.observe.spans.SpanSink)."""

    def __init__(self):
        self.spans = []

    def record(self, span):
        self.spans.append(span)

    def record_all(self, spans):
        self.spans.extend(spans)


class Samples:
    """A metrics recorder (devenv.aws.metrics.Recorder) that keeps every sample."""

    def __init__(self):
        self.samples: list[tuple[str, str, float, dict, str, bool]] = []

    def series(self, namespace, name, dimensions, unit="None", *, distribution=False):
        dims = dict(dimensions)
        return lambda value: self.samples.append((namespace, name, value, dims, unit, distribution))

    def batched(self, expand):
        """Each item expanded at once, into the samples it makes."""
        def add(item):
            for key, values, distribution in expand([item]):
                self.samples.extend((key.namespace, key.name, v, dict(key.dimensions), key.unit, distribution)
                                    for v in values)
        return add

    def of(self, name: str, **dims: str) -> list[float]:
        """The values of metric ``name`` with exactly these dimensions, in order."""
        return [v for _, n, v, d, _, _ in self.samples if n == name and d == dims]


# ---------------------------------------------------------------- botocore's shapes

def output_shape_errors(service: str, operation: str, response: dict) -> list[str]:
    """What in a boto3 response (parsed by botocore) does not fit the operation's output shape
    in botocore's service model: a required member missing, a member the model does not know,
    a value of the wrong type or outside its enum. ``ResponseMetadata`` is boto3's own.
    (botocore's parser has already dropped members the model does not know: ``ShapeChecked``
    below sees the answer as it came over the wire.)"""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).output_shape
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    return shape_errors(shape, body, operation, wire=False) if shape is not None else (
        [f"{operation}: expected no output, got {sorted(body)}"] if body else [])


def assert_output_shape(service: str, operation: str, response: dict) -> dict:
    """Fails with every mismatch ``output_shape_errors`` finds; returns the response."""
    errors = output_shape_errors(service, operation, response)
    assert not errors, f"{service} {operation} answer does not fit botocore's output shape:\n" + "\n".join(errors)
    return response


def shape_errors(shape, value, path: str = "$", *, wire: bool = True) -> list[str]:
    """Where ``value`` departs from botocore's ``shape``: a required member missing, a member
    botocore does not know, a value of the wrong type, outside its enum or its min/max.
    ``wire``: ``value`` is a JSON document as it came over the wire (json and rest-json
    protocols: members by their serialized names; those travelling in headers, the URI or the
    query string are not looked for in the body; timestamps and blobs as text); otherwise it
    is what botocore parsed (members by name, timestamps as datetimes, blobs as bytes)."""
    errors: list[str] = []
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object ({shape.name}), got {type(value).__name__}"]
        body = {(member.serialization.get("name", name) if wire else name): (name, member)
                for name, member in shape.members.items() if not wire or "location" not in member.serialization}
        for name in shape.required_members:
            member = shape.members[name]
            key = member.serialization.get("name", name) if wire else name
            if (not wire or "location" not in member.serialization) and key not in value:
                errors.append(f"{path}.{name}: required by {shape.name}, missing")
        for key, item in value.items():
            if key not in body:
                errors.append(f"{path}.{key}: not a member of {shape.name}")
            else:
                errors += shape_errors(body[key][1], item, f"{path}.{key}", wire=wire)
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list ({shape.name}), got {type(value).__name__}"]
        for index, item in enumerate(value):
            errors += shape_errors(shape.member, item, f"{path}[{index}]", wire=wire)
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected an object ({shape.name}), got {type(value).__name__}"]
        for key, item in value.items():
            errors += shape_errors(shape.key, key, f"{path}<key>", wire=wire)
            errors += shape_errors(shape.value, item, f"{path}.{key}", wire=wire)
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string ({shape.name}), got {value!r}"]
        if shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} is not one of {shape.name}'s values {shape.enum}")
        errors += _bounds(shape, len(value), path, "length")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: expected an integer ({shape.name}), got {value!r}"]
        errors += _bounds(shape, value, path, "value")
    elif kind in ("double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return [f"{path}: expected a number ({shape.name}), got {value!r}"]
    elif kind == "boolean":
        if not isinstance(value, bool):
            return [f"{path}: expected a boolean ({shape.name}), got {value!r}"]
    elif kind == "timestamp":
        if not isinstance(value, (str, int, float) if wire else datetime.datetime) or isinstance(value, bool):
            return [f"{path}: expected a timestamp ({shape.name}), got {value!r}"]
    elif kind == "blob":
        if not isinstance(value, str if wire else (bytes, bytearray)) and (wire or not hasattr(value, "read")):
            return [f"{path}: expected a blob ({shape.name}), got {value!r}"]
    return errors


def _bounds(shape, size, path: str, what: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        return [f"{path}: {what} {size} below {shape.name}'s minimum {low}"]
    if high is not None and size > high:
        return [f"{path}: {what} {size} above {shape.name}'s maximum {high}"]
    return []


class ShapeChecked:
    """Checks every answer a boto3 ``client`` gets against botocore's model of its service:
    a success's JSON body against the operation's output shape, an error's against the shape
    of the error it names (which must be one the operation lists, unless ``allow_unmodeled``).
    Bodies are checked as they came over the wire, before botocore's parser drops what it does
    not know. ``checked`` counts the answers seen; ``errors`` collects every departure.

        with ShapeChecked(client) as checked:
            client.get_function(FunctionName="echo")
        assert checked.checked == 1   # and __exit__ raised if a shape was wrong
    """

    def __init__(self, client, *, allow_unmodeled: tuple[str, ...] = ()):
        self.client = client
        self.allow_unmodeled = allow_unmodeled
        self.checked = 0
        self.errors: list[str] = []
        self._event = f"before-parse.{client.meta.service_model.service_id.hyphenize()}.*"

    def __enter__(self) -> "ShapeChecked":
        self.client.meta.events.register(self._event, self._check, unique_id=f"shape-check-{id(self)}")
        return self

    def __exit__(self, *exc_info) -> None:
        self.client.meta.events.unregister(self._event, unique_id=f"shape-check-{id(self)}")
        if exc_info[0] is None:
            assert not self.errors, "answers departing from botocore's shapes:\n" + "\n".join(self.errors)

    def _check(self, operation_model, response_dict, **_) -> None:
        self.checked += 1
        name = operation_model.name
        status = response_dict["status_code"]
        body = response_dict["body"]
        if status >= 300:
            headers = {k.lower(): v for k, v in response_dict["headers"].items()}
            code = headers.get("x-amzn-errortype", "").split(":")[0]
            shapes = {shape.name: shape for shape in operation_model.error_shapes}
            if code in self.allow_unmodeled:
                return
            if code not in shapes:
                self.errors.append(f"{name}: error {code or status} is not one {name} may answer")
                return
            shape = shapes[code]
        else:
            shape = operation_model.output_shape
            if shape is None or shape.serialization.get("payload"):  # no body, or a raw payload (Invoke)
                return
        if not body and status in (202, 204):
            return
        try:
            document = json.loads(body)
        except ValueError:
            self.errors.append(f"{name}: the body is not JSON: {body[:200]!r}")
            return
        self.errors += [f"{name}: {error}" for error in shape_errors(shape, document)]
