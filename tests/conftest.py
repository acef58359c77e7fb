"""What every tier shares: one moto server per test session, fresh resources per test, and how
the suite is split across xdist workers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]

from emulator.resources import LocalResources
from testbed.aws import MotoEndpoint, moto_server
from tests.support.botocore_files import share_parsed_data_files


def pytest_configure(config: pytest.Config) -> None:
    share_parsed_data_files()


# Tests outside tests/infra that synthesize the whole app in-process.
_SYNTHESIZING = ("tests/integration/test_doctor_bootstrap_pin.py",)


class _InfraOnOneWorker(LoadFileScheduling):  # type: ignore[misc]
    """`--dist loadfile`, but tests/infra (and the tests that synthesize beside it) is one unit:
    its synthesized apps are session fixtures, made once per worker, and each worker's first
    synth also starts the jsii runtime."""

    def _split_scope(self, nodeid: str) -> str:
        scope = super()._split_scope(nodeid)
        return (
            "tests/infra" if scope.startswith("tests/infra/") or scope in _SYNTHESIZING else scope
        )


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadFileScheduling | None:
    if config.getvalue("dist") != "loadfile":
        return None
    return _InfraOnOneWorker(config, log)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoEndpoint]:
    """One moto server (DynamoDB, S3, SNS, SQS) for the whole test session."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def resources(moto: MotoEndpoint) -> LocalResources:
    """A fresh job table, results bucket, topic and subscribed inbox queue."""
    return moto.create_resources()
