"""Fixtures every tier may use: one moto server per test session, fresh resources per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.resources import LocalResources
from testbed.aws import MotoEndpoint, moto_server
from tests.support.botocore_files import share_parsed_data_files


def pytest_configure(config: pytest.Config) -> None:
    share_parsed_data_files()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoEndpoint]:
    """One moto server (DynamoDB, S3, SNS, SQS) for the whole test session."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def resources(moto: MotoEndpoint) -> LocalResources:
    """A fresh job table, results bucket, topic and subscribed inbox queue."""
    return moto.create_resources()
