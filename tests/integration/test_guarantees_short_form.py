"""Short forms of slow tests that guard a guarantee, so `make test` holds them too: a job whose
session never answers still ends, notified once; no agent outlives a killed runtime."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import suppress

import psutil
import pytest

from testbed.aws import MotoEndpoint
from testbed.local_runtime import agent_processes_of, local_runtime, new_session_id
from testbed.poller import PollerRig, inject_runtime_fault, poller_rig

GIVE_UP_S = 60.0
MAX_POLL_FAILURES = 2


@pytest.fixture(scope="module")
def rig(moto: MotoEndpoint) -> Iterator[PollerRig]:
    with poller_rig(moto, moto.create_resources(), max_poll_failures=MAX_POLL_FAILURES) as running:
        yield running


def test_a_job_whose_session_fails_every_poll_ends_failed_and_is_notified_once(
    rig: PollerRig,
) -> None:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 60})
    inject_runtime_fault(rig, "InternalServerException", session_id, count=10)
    for _ in range(MAX_POLL_FAILURES - 1):
        rig.tick()
        assert rig.status(job_id) == "RUNNING"
    rig.tick_until_done([job_id])
    record = rig.record(job_id)
    assert record["status"] == {"S": "FAILED"}, record
    assert record["error"]["M"]["code"] == {"S": "POLL_FAILED"}, record
    assert "notified_at" in record and "attention" not in record, record
    assert [m["document"]["status"] for m in rig.inbox()] == ["FAILED"]
    assert rig.sessions()[session_id]["state"] == "Stopped"


def test_an_agent_ends_itself_when_its_runtime_is_killed() -> None:
    with local_runtime("echo_agent") as runtime:
        runtime.invoke(new_session_id(), {})
        assert len(runtime.agent_processes()) == 1
        os.kill(runtime.pid, signal.SIGKILL)  # no chance to stop it
        with suppress(psutil.NoSuchProcess):
            psutil.Process(runtime.pid).wait(timeout=GIVE_UP_S)
        deadline = time.monotonic() + GIVE_UP_S
        while agent_processes_of(runtime.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert agent_processes_of(runtime.pid) == []
