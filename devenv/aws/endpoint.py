"""Where the emulator listens, and boto3 clients bound to it.

boto3 costs 0.1-0.2 s to import and 0.1-0.4 s to build the first clients (measured here),
so it is imported inside functions and each client is built on first use: commands that
never talk to AWS pay nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

# Emulators accept any credentials; fixed dummies keep the user's real ones out of reach.
DUMMY_CREDENTIALS = ("test", "test")


@dataclass(frozen=True)
class AwsEndpoint:
    """An AWS-compatible endpoint (moto, LocalStack, ministack) and the region it serves."""

    url: str
    region: str


@dataclass(frozen=True)
class ClientSettings:
    """Network limits for emulator calls: a local emulator answers in milliseconds, so a
    call that hangs means it is down, and failing fast beats boto3's default 60 s x 5.

    Callers that long-poll SQS must raise ``read_timeout`` above their ``WaitTimeSeconds``.
    """

    connect_timeout: float = 2.0
    read_timeout: float = 10.0
    max_attempts: int = 2
    validate: bool = True  # botocore's client-side check of the parameters (per item of a list)


SENDER_SETTINGS = ClientSettings(max_attempts=1, validate=False)


def make_client(service: str, endpoint: AwsEndpoint, settings: ClientSettings = ClientSettings(),
                *, session: Any = None) -> Any:
    """One boto3 client for ``service`` at ``endpoint``, with dummy credentials.

    S3 uses path-style addressing because ``bucket.127.0.0.1`` does not resolve.
    """
    from botocore.config import Config

    session = session or new_session(endpoint)
    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
        s3={"addressing_style": "path"},
        parameter_validation=settings.validate,
    )
    return session.client(service, endpoint_url=endpoint.url, region_name=endpoint.region,
                          config=config)


def one_attempt_client_factory(service: str, url: str, region: str) -> Callable[[], Any]:
    """Makes (when called) a ``service`` client for the emulator at ``url`` for background
    senders: each call tried once (they keep their data and retry on their own), and no
    client-side parameter check (they build the parameters; the emulator checks them too),
    which costs ~4 µs per log event or datapoint."""
    return lambda: make_client(service, AwsEndpoint(url, region), SENDER_SETTINGS)


def new_session(endpoint: AwsEndpoint) -> Any:
    """A boto3 session with the dummy credentials, so no profile or env key is ever read."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS[0],
        aws_secret_access_key=DUMMY_CREDENTIALS[1],
        region_name=endpoint.region,
    )


class AwsClients:
    """boto3 clients for one endpoint, each built on first use and then reused.

    Sharing one boto3 session keeps parsed service models cached between clients. Built
    clients are thread-safe; building is not, hence the lock.
    """

    def __init__(self, endpoint: AwsEndpoint, settings: ClientSettings = ClientSettings()):
        self.endpoint = endpoint
        self.settings = settings
        self._lock = threading.Lock()
        self._session: Any = None
        self._built: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """The client for ``service`` ('sqs', 'events', 's3', 'sts', 'lambda', ...)."""
        with self._lock:
            if service not in self._built:
                if self._session is None:
                    self._session = new_session(self.endpoint)
                self._built[service] = make_client(service, self.endpoint, self.settings,
                                                   session=self._session)
            return self._built[service]

    @property
    def sqs(self) -> Any:
        return self.client("sqs")

    @property
    def events(self) -> Any:
        return self.client("events")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def sts(self) -> Any:
        return self.client("sts")


@lru_cache(maxsize=16)
def clients(endpoint: AwsEndpoint, settings: ClientSettings = ClientSettings()) -> AwsClients:
    """Lazily built boto3 clients for ``endpoint``, shared per (endpoint, settings) within
    the process: building a client costs ~30-100 ms, so repeated deploys reuse them."""
    return AwsClients(endpoint, settings)
