"""Bad answers and bad records: each logged, counted and resolved without touching the others."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentjobs.protocol import JobStatus, format_time, utc_now
from agentjobs.record import ATTENTION_PENDING, JobRecord
from agentjobs.store import JobStore
from testbed.aws import MotoEndpoint
from testbed.poller import BAD_AGENT_CMD, PollerRig, poller_rig


@pytest.fixture(scope="module")
def rig(moto: MotoEndpoint) -> Iterator[PollerRig]:
    # Module-wide: each test ends every job it makes (so a tick's counts are its own jobs')
    # and reads only its own jobs' notifications.
    resources = moto.create_resources()
    with poller_rig(moto, resources, agent_cmd=BAD_AGENT_CMD, max_poll_failures=2) as running:
        yield running


def _notifications(rig: PollerRig, *job_ids: str) -> list[dict[str, Any]]:
    return [m for m in rig.inbox() if m["document"]["job_id"] in job_ids]


def _running_job(rig: PollerRig, mode: str) -> str:
    """A RUNNING record, as the agent writes it, in a session the bad agent serves in `mode`."""
    now = datetime.now(UTC)
    record = JobRecord(
        job_id=uuid.uuid4().hex,
        session_id=f"{mode}-{uuid.uuid4()}",
        kind="synthetic",
        status=JobStatus.RUNNING,
        submitted_at=format_time(now),
        updated_at=format_time(now),
        max_runtime_s=600,
        deadline_at=format_time(now + timedelta(seconds=600)),
    )
    JobStore(rig.moto.client("dynamodb"), rig.resources.table).create_running(record)
    return record.job_id


def _error_code(rig: PollerRig, job_id: str) -> str:
    return str(rig.record(job_id)["error"]["M"]["code"]["S"])


def test_bad_answers_fail_their_jobs_only_after_the_retry_limit(rig: PollerRig) -> None:
    bad = {mode: _running_job(rig, mode) for mode in ("notjson", "array", "unknownstatus")}
    good = _running_job(rig, "good")
    first = rig.tick()
    assert first.steps[good] == "closed"
    assert first.counts["BadAnswers"] == 3 and first.counts["PollErrors"] == 3
    assert all(rig.status(job_id) == "RUNNING" for job_id in bad.values())
    rig.tick_until_done(list(bad.values()))
    for job_id in bad.values():
        assert rig.status(job_id) == "FAILED"
        assert _error_code(rig, job_id) == "POLL_FAILED"
    reasons = {m: rig.record(j)["error"]["M"]["message"]["S"] for m, j in bad.items()}
    assert "not JSON" in reasons["notjson"] and "DONE" in reasons["unknownstatus"]
    assert len(_notifications(rig, good, *bad.values())) == 4


def test_result_too_big_for_the_record_goes_to_s3(rig: PollerRig) -> None:
    job_id = _running_job(rig, "bigresult")
    rig.tick_until_done([job_id])
    record = rig.record(job_id)
    assert record["status"] == {"S": "SUCCEEDED"} and "result" not in record
    key = record["result_uri"]["S"].split("/", 3)[3]
    body = rig.moto.client("s3").get_object(Bucket=rig.resources.bucket, Key=key)["Body"].read()
    assert len(body) > 300_000


def test_pointer_to_a_missing_object_fails_the_job(rig: PollerRig) -> None:
    job_id = _running_job(rig, "missinguri")
    rig.tick_until_done([job_id])
    assert rig.status(job_id) == "FAILED"
    assert _error_code(rig, job_id) == "RESULT_MISSING"


def test_malformed_record_is_failed_and_notified_without_a_poll(rig: PollerRig) -> None:
    job_id = uuid.uuid4().hex
    rig.moto.client("dynamodb").put_item(
        TableName=rig.resources.table,
        Item={
            "job_id": {"S": job_id},
            "status": {"S": "RUNNING"},
            "submitted_at": {"S": utc_now()},
            "attention": {"S": ATTENTION_PENDING},
        },
    )
    report = rig.tick()
    assert report.steps[job_id] == "closed" and report.counts["BadRecords"] == 1
    assert report.counts.get("JobsPolled", 0) == 0
    assert rig.status(job_id) == "FAILED" and _error_code(rig, job_id) == "INVALID_RECORD"
    [message] = _notifications(rig, job_id)
    assert message["document"]["job_id"] == job_id and message["document"]["kind"] is None
