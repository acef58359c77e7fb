"""A moto server for the tests, and fresh job resources on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

from emulator.ports import free_port
from emulator.resources import LocalResources, create_resources
from testbed.processes import VENV_BIN, running

REGION = "us-east-1"


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

    def client(self, service: str):  # type: ignore[no-untyped-def]
        """A boto3 client of `service` on this server."""
        return self.session().client(service, endpoint_url=self.url)

    def create_resources(self) -> LocalResources:
        """A fresh table, bucket, topic and inbox queue, uniquely named."""
        return create_resources(_EndpointSession(self), f"t{uuid.uuid4().hex[:12]}")


class _EndpointSession:
    """A boto3 session stand-in whose clients all talk to the moto server."""

    def __init__(self, endpoint: MotoEndpoint) -> None:
        self._endpoint = endpoint
        self.region_name = REGION

    def client(self, service: str):  # type: ignore[no-untyped-def]
        return self._endpoint.client(service)


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
