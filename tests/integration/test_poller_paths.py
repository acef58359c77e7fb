"""The poller against moto and the local runtime with real agents: each way a job can end."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from emulator.resources import LocalResources
from jobpoller.report import TickReport
from testbed.aws import MotoEndpoint
from testbed.local_runtime import new_session_id
from testbed.poller import (
    PollerRig,
    inject_runtime_fault,
    poller_rig,
    stop_session,
    wait_agent_status,
)
from tests.support.still_running import STILL_RUNNING_SECONDS


@pytest.fixture(scope="module")
def rig(moto: MotoEndpoint) -> Iterator[PollerRig]:
    # Module-wide: each test uses its own sessions and jobs and asserts only on those.
    with poller_rig(moto, moto.create_resources()) as running:
        yield running


def _only_notification(rig: PollerRig, job_id: str) -> dict[str, object]:
    messages = [m for m in rig.inbox() if m["document"]["job_id"] == job_id]
    assert len(messages) == 1, messages
    return messages[0]["document"]  # type: ignore[no-any-return]


def _closed(rig: PollerRig, job_id: str, session_id: str) -> dict[str, object]:
    record = rig.record(job_id)
    assert "notified_at" in record and "session_stopped_at" in record
    assert "attention" not in record and "lease_holder" not in record
    assert rig.sessions()[session_id]["state"] == "Stopped"
    return record


def test_finished_job_is_recorded_notified_once_and_its_session_stopped(rig: PollerRig) -> None:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 0.5, "result_bytes": 50})
    rig.tick_until_done([job_id])
    record = _closed(rig, job_id, session_id)
    assert record["status"] == {"S": "SUCCEEDED"}
    document = _only_notification(rig, job_id)
    assert document["status"] == "SUCCEEDED" and document["session_id"] == session_id
    assert document["finished_at"] == record["finished_at"]["S"]  # type: ignore[index]
    assert "result_preview" in document


@pytest.mark.slow
def test_large_result_is_pointed_to_in_s3(rig: PollerRig) -> None:
    session_id = new_session_id()
    job_id = rig.submit(
        session_id, kind="synthetic", input={"seconds": 0.1, "result_bytes": 200_000}
    )
    rig.tick_until_done([job_id])
    record = _closed(rig, job_id, session_id)
    assert record["result_uri"]["S"].startswith("s3://")  # type: ignore[index]
    assert _only_notification(rig, job_id)["result_uri"] == record["result_uri"]["S"]  # type: ignore[index]


def test_failed_job_is_notified_with_its_error(rig: PollerRig) -> None:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 0.1, "fail": "boom"})
    rig.tick_until_done([job_id])
    assert _closed(rig, job_id, session_id)["status"] == {"S": "FAILED"}
    document = _only_notification(rig, job_id)
    assert document["status"] == "FAILED"
    assert "boom" in document["error"]["message"]  # type: ignore[index]


def test_cancelled_job_is_notified_as_cancelled(rig: PollerRig) -> None:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 60})
    rig.runtime.invoke(session_id, {"action": "cancel", "job_id": job_id})
    rig.tick_until_done([job_id])
    assert _closed(rig, job_id, session_id)["status"] == {"S": "CANCELLED"}
    assert _only_notification(rig, job_id)["status"] == "CANCELLED"


def test_recycled_session_without_outcome_makes_the_job_lost(rig: PollerRig) -> None:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 60})
    stop_session(rig, session_id)
    rig.tick_until_done([job_id])
    # The poll re-created the session (a fresh microVM that knows nothing); it was stopped again.
    record = _closed(rig, job_id, session_id)
    assert record["status"] == {"S": "LOST"}
    assert record["error"]["M"]["code"] == {"S": "SESSION_LOST"}  # type: ignore[index]
    assert _only_notification(rig, job_id)["status"] == "LOST"


def test_recycled_session_with_stored_outcome_recovers_the_result(rig: PollerRig) -> None:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 0.2, "result_bytes": 20})
    wait_agent_status(rig, session_id, job_id, "SUCCEEDED")
    stop_session(rig, session_id)
    rig.tick_until_done([job_id])
    record = _closed(rig, job_id, session_id)
    assert record["status"] == {"S": "SUCCEEDED"} and "result" in record
    assert _only_notification(rig, job_id)["status"] == "SUCCEEDED"


def test_job_the_agent_stops_at_its_deadline_is_timed_out(rig: PollerRig) -> None:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 60}, max_runtime_s=1)
    time.sleep(1.2)
    rig.tick_until_done([job_id])
    record = _closed(rig, job_id, session_id)
    assert record["status"] == {"S": "TIMED_OUT"}
    assert _only_notification(rig, job_id)["status"] == "TIMED_OUT"


def test_unanswering_job_past_its_deadline_is_timed_out_by_the_poller(rig: PollerRig) -> None:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 60}, max_runtime_s=1)
    inject_runtime_fault(rig, "RetryableConflictException", session_id, count=100)
    time.sleep(1.2)
    rig.tick()
    record = rig.record(job_id)
    assert record["status"] == {"S": "TIMED_OUT"}
    assert record["error"]["M"]["code"] == {"S": "TIMED_OUT"}  # type: ignore[index]
    assert _only_notification(rig, job_id)["status"] == "TIMED_OUT"
    assert rig.sessions()[session_id]["state"] == "Stopped"


@pytest.mark.slow
def test_repeated_transport_errors_fail_the_job_after_the_limit(rig: PollerRig) -> None:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 60})
    inject_runtime_fault(rig, "InternalServerException", session_id, count=10)
    limit = rig.settings.max_poll_failures
    for _ in range(limit - 1):
        rig.tick()
        assert rig.status(job_id) == "RUNNING"
    rig.tick_until_done([job_id])
    record = _closed(rig, job_id, session_id)
    assert record["status"] == {"S": "FAILED"}
    assert record["error"]["M"]["code"] == {"S": "POLL_FAILED"}  # type: ignore[index]
    assert "InternalServerException" in record["error"]["M"]["message"]["S"]  # type: ignore[index]


@pytest.mark.slow
def test_conflicts_and_throttling_mean_still_running(rig: PollerRig) -> None:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 60})
    inject_runtime_fault(rig, "RetryableConflictException", session_id, count=3)
    inject_runtime_fault(rig, "ThrottlingException", session_id, count=3)
    for _ in range(6):
        rig.tick()
    record = rig.record(job_id)
    assert record["status"] == {"S": "RUNNING"} and record["poll_failures"] == {"N": "0"}


def test_a_poll_failure_is_isolated_to_its_job(rig: PollerRig) -> None:
    broken, healthy = new_session_id(), new_session_id()
    stuck = rig.submit(broken, kind="synthetic", input={"seconds": 60})
    done = rig.submit(healthy, kind="synthetic", input={"seconds": 0.1})
    inject_runtime_fault(rig, "RuntimeClientError", broken, count=1)
    wait_agent_status(rig, healthy, done, "SUCCEEDED")
    report = rig.tick()
    assert report.steps[done] == "closed" and report.steps[stuck] == "running"
    assert rig.record(stuck)["poll_failures"] == {"N": "1"}


def _still_running_at_a_tick(rig: PollerRig) -> tuple[str, str, TickReport]:
    """A job seen busy by the runtime and RUNNING by a tick: its session, id and that tick."""
    for seconds in STILL_RUNNING_SECONDS:
        session_id = new_session_id()
        job_id = rig.submit(session_id, kind="synthetic", input={"seconds": seconds})
        busy_by = time.monotonic() + seconds
        # The runtime's view of the agent lags by up to one ping period.
        while rig.sessions()[session_id]["ping"] != "HealthyBusy" and time.monotonic() < busy_by:
            time.sleep(0.05)
        report = rig.tick()
        if rig.status(job_id) == "RUNNING":
            return session_id, job_id, report
        # Ended before the tick on a loaded machine: a lost race, so try a longer job.
        assert rig.status(job_id) == "SUCCEEDED", rig.record(job_id)
        rig.tick_until_done([job_id])
    raise AssertionError(f"no job of {STILL_RUNNING_SECONDS} s was still running at a tick")


@pytest.mark.parametrize("busy_policy", ["accept", "reject"])
def test_running_job_is_followed_under_both_busy_policies(
    moto: MotoEndpoint, resources: LocalResources, busy_policy: str
) -> None:
    with poller_rig(moto, resources, busy_policy=busy_policy) as rig:
        session_id, job_id, report = _still_running_at_a_tick(rig)
        record = rig.record(job_id)
        assert record["status"] == {"S": "RUNNING"} and record["poll_failures"] == {"N": "0"}
        # Accepting runtimes answer with progress; rejecting ones say "busy", which is no error.
        assert ("last_seen_at" in record) == (busy_policy == "accept")
        assert report.counts["PollErrors"] == 0
        rig.tick_until_done([job_id])
        assert _closed(rig, job_id, session_id)["status"] == {"S": "SUCCEEDED"}
        assert _only_notification(rig, job_id)["status"] == "SUCCEEDED"


def test_fast_path_event_reconciles_just_the_named_job(rig: PollerRig) -> None:
    first, second = new_session_id(), new_session_id()
    named = rig.submit(first, kind="synthetic", input={"seconds": 0.1})
    other = rig.submit(second, kind="synthetic", input={"seconds": 0.1})
    wait_agent_status(rig, first, named, "SUCCEEDED")
    wait_agent_status(rig, second, other, "SUCCEEDED")
    report = rig.tick(event={"job_ids": [named]})
    assert report.steps == {named: "closed"}
    assert other in rig.in_flight() and named not in rig.in_flight()
