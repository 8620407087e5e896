"""The one door between deployment logic and an AWS endpoint.

``deploy`` talks to a ``ManagedPlaneApi``; ``BotoPlaneApi`` is the real one (boto3 against
the emulator), ``memory.InMemoryPlaneApi`` the fake for unit tests. Every failure leaves
here as a DeployError naming the resource, never as a botocore traceback.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cached_property
from typing import Iterator, Protocol

from devenv.aws.endpoint import AwsClients, AwsEndpoint, clients
from devenv.aws.plan import Action
from devenv.aws.resources import Arns, ManagedPlane
from devenv.errors import DeployError


class ManagedPlaneApi(Protocol):
    """Reads and changes the managed plane of one endpoint."""

    def account(self) -> str:
        """The account id the endpoint serves (moto: 123456789012)."""
        ...

    def observe(self) -> ManagedPlane:
        """Every bucket, queue, bus, rule and target the endpoint holds."""
        ...

    def apply(self, action: Action) -> None:
        """Carry out one action; raises DeployError naming the resource on failure."""
        ...


class BotoPlaneApi:
    """ManagedPlaneApi over boto3. Constructing it does no I/O and imports nothing heavy."""

    def __init__(self, endpoint: AwsEndpoint, aws: AwsClients | None = None):
        self.endpoint = endpoint
        self.clients = aws or clients(endpoint)

    def account(self) -> str:
        return self._account

    @cached_property
    def _account(self) -> str:
        with self._translated("could not reach the AWS emulator"):
            return self.clients.sts.get_caller_identity()["Account"]

    def observe(self) -> ManagedPlane:
        from devenv.aws.observe import observe_plane

        with self._translated("could not read the managed plane"):
            return observe_plane(self.clients)

    def apply(self, action: Action) -> None:
        from devenv.aws.apply import apply_action

        arns = Arns(self.endpoint.region, self.account())
        with self._translated(f"{action.resource}: '{action.describe()}' failed"):
            apply_action(self.clients, arns, action)

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Turn AWS and network failures into DeployError; anything else is a bug, left as is."""
        try:
            yield
        except DeployError:
            raise
        except Exception as exc:
            error = self._error(what, exc)
            if error is None:
                raise
            raise error from exc

    def _error(self, what: str, exc: Exception) -> DeployError | None:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            ReadTimeoutError,
        )

        from devenv.aws.apply import PartialFailure

        url = self.endpoint.url
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "?"), error.get("Message", "")
            return DeployError(f"{what}: {code}: {message}".rstrip(": "))
        if isinstance(exc, PartialFailure):
            return DeployError(f"{what}: {exc}")
        if isinstance(exc, ReadTimeoutError):
            return DeployError(f"{what}: the emulator at {url} did not answer in time",
                               hint="it may be overloaded or hung; its log tells more")
        if isinstance(exc, ConnectionError):
            return DeployError(f"{what}: nothing answers at {url}",
                               hint="is the stack up? `devenv status` tells")
        if isinstance(exc, BotoCoreError):
            return DeployError(f"{what}: {exc}")
        return None
