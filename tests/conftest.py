"""What every tier shares: one moto server per test session, fresh resources per test, and how
the suite is split across xdist workers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]

from emulator.botocore_files import share_parsed_data_files
from emulator.resources import LocalResources
from testbed.aws import MotoEndpoint, moto_server


def pytest_configure(config: pytest.Config) -> None:
    share_parsed_data_files()


# Tests outside tests/infra that synthesize the whole app in-process.
_SYNTHESIZING = ("tests/integration/test_doctor_bootstrap_pin.py",)


# The units that take longest (about 35-65 s each on 2 cores), longest first. They go to the
# workers first, so that none starts last and runs on alone while the others have finished;
# the rest follow most tests first, as xdist orders them.
_LONGEST_FIRST = (
    "tests/e2e/test_readme.py",
    "tests/infra",
    "tests/integration/test_durable_local_stack.py",
    "tests/e2e/test_local_stack.py",
    "tests/chaos/test_chaos.py",
    "tests/integration/test_poller_paths.py",
)


class _InfraOnOneWorker(LoadFileScheduling):  # type: ignore[misc]
    """`--dist loadfile`, but tests/infra (and the tests that synthesize beside it) is one unit:
    its synthesized apps are session fixtures, made once per worker, and each worker's first
    synth also starts the jsii runtime. The longest units are handed out first."""

    def _split_scope(self, nodeid: str) -> str:
        scope = super()._split_scope(nodeid)
        return (
            "tests/infra" if scope.startswith("tests/infra/") or scope in _SYNTHESIZING else scope
        )

    def _assign_work_unit(self, node: object) -> None:
        # The first assignment comes right after xdist has queued the units (most tests
        # first); the longest go before them. Indices into each worker's collection are
        # untouched: only the queue's order changes.
        if not getattr(self, "_longest_first", False):
            for scope in reversed(_LONGEST_FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            self._longest_first = True
        super()._assign_work_unit(node)


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
