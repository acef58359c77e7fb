"""The poller against moto and the local runtime with real agents: each way a job can end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.resources import LocalResources
from tests.support.aws import MotoEndpoint
from tests.support.local_runtime import new_session_id
from tests.support.poller import PollerRig, poller_rig


@pytest.fixture
def rig(moto: MotoEndpoint, resources: LocalResources) -> Iterator[PollerRig]:
    with poller_rig(moto, resources) as running:
        yield running


def test_finished_job_is_recorded_notified_once_and_its_session_stopped(rig: PollerRig) -> None:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 0.5, "result_bytes": 50})
    rig.tick_until_done([job_id])
    record = rig.record(job_id)
    assert record["status"]["S"] == "SUCCEEDED"
    assert "notified_at" in record and "session_stopped_at" in record
    assert rig.sessions()[session_id]["state"] == "Stopped"
    messages = rig.inbox()
    assert [m["document"]["job_id"] for m in messages] == [job_id]
    assert messages[0]["document"]["status"] == "SUCCEEDED"
    assert messages[0]["attributes"]["status"]["Value"] == "SUCCEEDED"
