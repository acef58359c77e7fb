"""A moto server for the tests, and fresh job resources on it."""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

from emulator.ports import free_port
from emulator.resources import LocalResources, create_resources
from testbed.processes import VENV_BIN, running

REGION = "us-east-1"

_CLIENTS_LOCK = threading.Lock()


@functools.cache
def _shared_session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


def shared_client(service: str, **kwargs: Any) -> Any:
    """A boto3 client from this process's one shared session (test credentials, REGION);
    `kwargs` as for Session.client. A fresh session reads botocore's models again: 0.1 CPU-s
    and more per client, where a shared one builds a client in a few milliseconds, and the
    tests build thousands. Building clients from one session is not thread-safe (the
    clients are), hence the lock; each client still has its own event hooks."""
    with _CLIENTS_LOCK:
        return _shared_session().client(service, **kwargs)


class SharedSession:
    """A boto3 session stand-in whose clients come from `shared_client` (for code that takes
    a session, such as create_resources, under moto's in-process mock_aws)."""

    region_name = REGION

    def client(self, service: str, **kwargs: Any) -> Any:
        return shared_client(service, **kwargs)


@dataclass(frozen=True)
class MotoEndpoint:
    """A running moto server and the environment that points boto3 at it."""

    url: str

    def env(self) -> dict[str, str]:
        """Variables that make any boto3 client in any process use this server."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def session(self) -> boto3.session.Session:
        """A boto3 session whose clients must still be given endpoint_url=self.url."""
        return boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=REGION,
        )

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client of `service` on this server (`kwargs` as for Session.client)."""
        return shared_client(service, **{"endpoint_url": self.url, **kwargs})

    def create_resources(self) -> LocalResources:
        """A fresh table, bucket, topic and inbox queue, uniquely named."""
        return create_resources(_EndpointSession(self), f"t{uuid.uuid4().hex[:12]}")


class _EndpointSession(SharedSession):
    """A boto3 session stand-in whose clients all talk to the moto server."""

    def __init__(self, endpoint: MotoEndpoint) -> None:
        self._endpoint = endpoint

    def client(self, service: str, **kwargs: Any) -> Any:
        return self._endpoint.client(service, **kwargs)


@contextmanager
def moto_server() -> Iterator[MotoEndpoint]:
    """A moto server on a free port, stopped when the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        [
            str(VENV_BIN / "python"),
            "-m",
            "emulator.moto_server",
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        ready_url=f"{url}/moto-api/",
    ):
        yield MotoEndpoint(url)
