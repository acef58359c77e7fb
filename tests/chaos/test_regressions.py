"""Bugs the chaos suite found, each pinned by the smallest test that shows it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from builtin_jobs.synthetic import SyntheticInput, sized_result
from testbed.aws import MotoEndpoint
from testbed.local_runtime import new_session_id
from testbed.poller import PollerRig, inject_runtime_fault, poller_rig, wait_agent_status

MAX_POLL_FAILURES = 2


@pytest.fixture(scope="module")
def rig(moto: MotoEndpoint) -> Iterator[PollerRig]:
    with poller_rig(
        moto, moto.create_resources(), lease_s=1.0, max_poll_failures=MAX_POLL_FAILURES
    ) as running:
        yield running


def test_unreachable_session_with_a_stored_outcome_ends_as_the_outcome_says(
    rig: PollerRig,
) -> None:
    # Found by chaos: an agent killed again and again while its session restarted answered
    # RuntimeClientError to every poll, and the job became FAILED (POLL_FAILED) although it
    # had finished and stored its outcome in S3 first.
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 0.1, "result_bytes": 40})
    wait_agent_status(rig, session_id, job_id, "SUCCEEDED")
    inject_runtime_fault(rig, "RuntimeClientError", session_id, count=MAX_POLL_FAILURES)
    for _ in range(MAX_POLL_FAILURES):
        rig.tick()
    record = rig.record(job_id)
    assert record["status"] == {"S": "SUCCEEDED"}, record
    want = sized_result(SyntheticInput(seconds=0.1, result_bytes=40))
    assert json.loads(record["result"]["S"]) == want
    rig.tick_until_done([job_id])
    assert [m["document"]["status"] for m in rig.inbox()] == ["SUCCEEDED"]


def test_job_past_its_deadline_with_a_stored_outcome_is_not_timed_out(rig: PollerRig) -> None:
    # Found by chaos: a job that finished just inside its deadline, whose session then could
    # not answer (killed, garbage), was recorded TIMED_OUT although its outcome was stored.
    session_id = new_session_id()
    job_id = rig.submit(
        session_id,
        kind="synthetic",
        input={"seconds": 0.1, "result_bytes": 40},
        max_runtime_s=1,
    )
    wait_agent_status(rig, session_id, job_id, "SUCCEEDED")
    time.sleep(1.2)  # past the job's deadline, which the poller checks on its own clock
    inject_runtime_fault(rig, "RuntimeClientError", session_id, count=1)
    rig.tick()
    record = rig.record(job_id)
    assert record["status"] == {"S": "SUCCEEDED"}, record
    want = sized_result(SyntheticInput(seconds=0.1, result_bytes=40))
    assert json.loads(record["result"]["S"]) == want
