"""Answers too big to store or publish, or pointing elsewhere: every job still ends, once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agentjobs import schema
from agentjobs.limits import (
    MAX_ERROR_CODE_CHARS,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_PROGRESS_MESSAGE_CHARS,
)
from testbed.aws import MotoEndpoint
from testbed.poller import PollerRig, poller_rig
from tests.support.refusals import OVERSIZED_AGENT_CMD, running_job


@pytest.fixture(scope="module")
def rig(moto: MotoEndpoint) -> Iterator[PollerRig]:
    # Module-wide: each test uses its own sessions and jobs and asserts only on those.
    with poller_rig(moto, moto.create_resources(), agent_cmd=OVERSIZED_AGENT_CMD) as running:
        yield running


def _ticks_until_done(rig: PollerRig, job_id: str, ticks: int = 3) -> None:
    for _ in range(ticks):
        rig.tick()
        if job_id not in rig.in_flight():
            return
    raise AssertionError(f"{job_id} still in flight after {ticks} ticks")


def _only_notification(rig: PollerRig, job_id: str) -> dict[str, Any]:
    messages = [m["document"] for m in rig.inbox() if m["document"]["job_id"] == job_id]
    assert len(messages) == 1, messages
    return messages[0]  # type: ignore[no-any-return]


def _error(rig: PollerRig, job_id: str) -> dict[str, str]:
    error = rig.record(job_id)["error"]["M"]
    return {"code": error["code"]["S"], "message": error["message"]["S"]}


def test_job_with_a_200_kb_error_is_failed_notified_once_and_closed(rig: PollerRig) -> None:
    job_id = running_job(rig, "hugeerror")
    _ticks_until_done(rig, job_id)
    record = rig.record(job_id)
    assert record["status"] == {"S": "FAILED"} and "session_stopped_at" in record
    error = _error(rig, job_id)
    assert error["code"] == "JOB_FAILED"
    assert len(error["message"]) == MAX_ERROR_MESSAGE_CHARS
    assert error["message"].startswith("E\u00e9\U0001f600\n") and error["message"].endswith(
        "\u2026"
    )
    document = _only_notification(rig, job_id)
    assert document["error"] == error
    rig.tick()
    assert [m for m in rig.inbox() if m["document"]["job_id"] == job_id] == []


def test_oversized_fields_of_a_finished_answer_are_cut_or_replaced(rig: PollerRig) -> None:
    job_id = running_job(rig, "hugefields")
    _ticks_until_done(rig, job_id)
    record = rig.record(job_id)
    assert len(record["error"]["M"]["code"]["S"]) == MAX_ERROR_CODE_CHARS
    progress = record["progress"]["M"]["message"]["S"]
    assert len(progress) == MAX_PROGRESS_MESSAGE_CHARS
    # Not a time: the poller's own clock says when the job was seen to end.
    assert len(record["finished_at"]["S"]) == len("2026-01-01T00:00:00.000Z")
    assert record["finished_at"]["S"] != "2026-01-01T00:00:00.000Z"
    assert _only_notification(rig, job_id)["finished_at"] == record["finished_at"]["S"]


def test_oversized_progress_is_stored_cut(rig: PollerRig) -> None:
    job_id = running_job(rig, "hugeprogress")
    report = rig.tick()
    assert report.steps[job_id] == "running"
    record = rig.record(job_id)
    assert record["status"] == {"S": "RUNNING"}
    assert len(record["progress"]["M"]["message"]["S"]) == MAX_PROGRESS_MESSAGE_CHARS
    assert record["progress"]["M"]["percent"] == {"N": "40"}


@pytest.mark.parametrize("mode", ["otherjob", "inputs"])
def test_result_uri_other_than_the_jobs_own_fails_the_job(rig: PollerRig, mode: str) -> None:
    s3 = rig.moto.client("s3")
    # The objects exist: what matters is whose they are, not whether they are there.
    s3.put_object(Bucket=rig.resources.bucket, Key=schema.result_key("0" * 32), Body=b"{}")
    s3.put_object(Bucket=rig.resources.bucket, Key="inputs/someone-elses.csv", Body=b"a,b\n")
    job_id = running_job(rig, mode)
    _ticks_until_done(rig, job_id)
    record = rig.record(job_id)
    assert record["status"] == {"S": "FAILED"} and "result_uri" not in record
    error = _error(rig, job_id)
    assert error["code"] == "RESULT_REFUSED"
    assert schema.result_key(job_id) in error["message"]
    document = _only_notification(rig, job_id)
    assert "result_uri" not in document and document["error"]["code"] == "RESULT_REFUSED"


def test_result_already_stored_for_the_job_is_never_overwritten(rig: PollerRig) -> None:
    job_id = running_job(rig, "bigresult")
    key = schema.result_key(job_id)
    s3 = rig.moto.client("s3")
    s3.put_object(Bucket=rig.resources.bucket, Key=key, Body=b'"the agent\'s own result"')
    _ticks_until_done(rig, job_id)
    body = s3.get_object(Bucket=rig.resources.bucket, Key=key)["Body"].read()
    assert body == b'"the agent\'s own result"'
    assert rig.status(job_id) == "FAILED"
    assert _error(rig, job_id)["code"] == "RESULT_REFUSED"


def test_result_the_poller_already_stored_is_pointed_to(rig: PollerRig) -> None:
    # A finish that failed after the result was written: the next tick finds the same bytes.
    job_id = running_job(rig, "bigresult")
    key = schema.result_key(job_id)
    s3 = rig.moto.client("s3")
    s3.put_object(Bucket=rig.resources.bucket, Key=key, Body=json.dumps("r" * 100_000).encode())
    _ticks_until_done(rig, job_id)
    record = rig.record(job_id)
    assert record["status"] == {"S": "SUCCEEDED"}
    assert record["result_uri"] == {"S": f"s3://{rig.resources.bucket}/{key}"}


def test_running_job_past_its_deadline_ends_timed_out_whatever_it_answers(
    rig: PollerRig,
) -> None:
    job_id = running_job(rig, "running", runtime_s=-5)
    report = rig.tick()
    assert report.steps[job_id] == "closed"
    assert rig.status(job_id) == "TIMED_OUT"
    assert _only_notification(rig, job_id)["status"] == "TIMED_OUT"
