"""The one error hierarchy of devenv.

Every failure a user can meet is a DevenvError with a message written for people; the CLI
catches it once, prints it without a traceback and exits with its ``exit_code``.
"""

from __future__ import annotations

from dataclasses import dataclass


class DevenvError(Exception):
    """Base of every user-facing failure."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = list(details or [])

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file: where it is and what was expected."""

    file: str
    line: int | None
    path: str
    message: str

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ConfigError(DevenvError):
    """devenv.yaml (or its overlay) is missing, unreadable or invalid."""

    exit_code = 2

    def __init__(self, issues: list[ConfigIssue], *, hint: str | None = None):
        self.issues = list(issues)
        count = len(self.issues)
        head = "invalid configuration" if count != 1 else "invalid configuration: 1 problem"
        if count > 1:
            head = f"invalid configuration: {count} problems"
        super().__init__(head, hint=hint, details=[i.render() for i in self.issues])


class PrerequisiteError(DevenvError):
    """A binary or package devenv needs is not installed."""

    exit_code = 3


class StateError(DevenvError):
    """The state folder (.devenv/) is locked, stale or inconsistent."""

    exit_code = 4


class PortInUseError(DevenvError):
    """A port devenv was told to use is taken by another process."""

    exit_code = 5


class ComponentError(DevenvError):
    """A component failed to start or to become healthy.

    Carries the component name and the last lines of its log so the user sees why.
    """

    exit_code = 6

    def __init__(self, component: str, message: str, *, log_tail: list[str] | None = None,
                 hint: str | None = None):
        self.component = component
        self.log_tail = list(log_tail or [])
        super().__init__(f"{component}: {message}", hint=hint, details=self.log_tail)


class DeployError(DevenvError):
    """Applying the managed plane (queues, buses, rules, buckets) to the emulator failed."""

    exit_code = 7


class NotRunningError(DevenvError):
    """A command needs a running stack and there is none."""

    exit_code = 8


class EndpointError(DevenvError):
    """An HTTP call (to one of the stack's endpoints, or one the user named) failed. The
    message names the endpoint; the subclass says how it failed."""

    exit_code = 10

    def __init__(self, message: str, *, url: str, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.url = url


class EndpointUnreachable(EndpointError):
    """Nothing answers there: connection refused or reset, unknown host name."""


class EndpointTimeout(EndpointError):
    """Connected, but no answer within the call's timeout."""


class EndpointStatusError(EndpointError):
    """The endpoint answered with an error status (>= 400); ``status`` and ``body`` are its own."""

    def __init__(self, message: str, *, url: str, status: int, body: bytes, hint: str | None = None):
        super().__init__(message, url=url, hint=hint)
        self.status = status
        self.body = body


class AwsErrorAnswer(EndpointStatusError):
    """An AWS-compatible API's error answer, with its error ``code``; ``response`` carries it
    as botocore's ``ClientError`` does (``Error.Code``, ``ResponseMetadata.HTTPStatusCode``),
    so code that handles boto3's errors handles these alike; ``detail`` is the answer's own message."""

    def __init__(self, message: str, *, url: str, status: int, body: bytes, code: str, detail: str = "",
                 hint: str | None = None):
        super().__init__(message, url=url, status=status, body=body, hint=hint)
        self.code = code
        self.response = {"Error": {"Code": code, "Message": detail}, "ResponseMetadata": {"HTTPStatusCode": status}}


class BuildError(DevenvError):
    """Building a function's or service's environment failed (a requirements file that does
    not resolve, an index out of reach with nothing cached)."""

    exit_code = 9
