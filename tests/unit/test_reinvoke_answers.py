"""The ping request's parse and how a stored outcome ends a RUNNING record (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentjobs.agent.stored_answers import outcome_record
from agentjobs.protocol import (
    JOB_ID_PATTERN,
    JobStatus,
    PingRequest,
    ProtocolError,
    parse_request,
)
from agentjobs.record import JobRecord, Progress, new_job_id

JOB = "ab" * 16


def _running() -> JobRecord:
    return JobRecord(
        job_id=JOB,
        session_id="s" * 40,
        kind="synthetic",
        status=JobStatus.RUNNING,
        submitted_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:01.000Z",
        max_runtime_s=60.0,
        deadline_at="2026-01-01T00:01:00.000Z",
        progress=Progress(10.0, "working"),
    )


@given(token=st.none() | st.text(min_size=1, max_size=40), owner=st.none() | st.text(max_size=9))
def test_every_job_id_the_agent_mints_has_the_form_the_fallback_accepts(
    token: str | None, owner: str | None
) -> None:
    assert JOB_ID_PATTERN.fullmatch(new_job_id(token, owner))


@pytest.mark.parametrize("payload", [{"method": "ping"}, {"method": "ping", "payload": {"a": 1}}])
def test_ping_method_parses(payload: dict[str, Any]) -> None:
    assert parse_request(payload) == PingRequest()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"method": "PING"}, "UNKNOWN_ACTION"),
        ({"method": None}, "UNKNOWN_ACTION"),
        ({"method": "ping", "payload": []}, "INVALID_REQUEST"),
        ({"method": "ping", "prompt": "hi"}, "INVALID_REQUEST"),
    ],
)
def test_bad_ping_is_refused_with_what_is_expected(payload: dict[str, Any], code: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request(payload)
    assert caught.value.code == code
    assert "ping" in caught.value.message


def test_a_method_beside_an_action_is_an_unknown_field_of_that_action() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request({"action": "status", "method": "ping"})
    assert caught.value.code == "INVALID_REQUEST" and "method" in caught.value.message


def test_outcome_ends_the_record_as_the_agent_answered_it() -> None:
    outcome = {
        "job_id": JOB,
        "status": "FAILED",
        "finished_at": "2026-01-01T00:00:05.000Z",
        "progress": {"percent": 40, "message": "step 2"},
        "error": {"code": "JOB_FAILED", "message": "boom"},
    }
    ended = outcome_record(_running(), outcome)
    assert ended is not None
    assert ended.to_answer(with_outcome=True) == {
        "job_id": JOB,
        "session_id": "s" * 40,
        "kind": "synthetic",
        "status": "FAILED",
        "progress": {"percent": 40.0, "message": "step 2"},
        "submitted_at": "2026-01-01T00:00:00.000Z",
        "finished_at": "2026-01-01T00:00:05.000Z",
        "error": {"code": "JOB_FAILED", "message": "boom"},
    }


@pytest.mark.parametrize(
    "outcome",
    [
        {"job_id": "cd" * 16, "status": "SUCCEEDED", "result": 1},
        {"job_id": JOB, "status": "RUNNING"},
        {"job_id": JOB, "status": "UNKNOWN"},
        {"job_id": JOB, "status": "SUCCEEDED"},
        {"job_id": JOB, "status": "SUCCEEDED", "result_uri": "http://x"},
        {"job_id": JOB, "status": 7},
    ],
)
def test_an_outcome_that_does_not_end_this_job_is_not_used(outcome: dict[str, Any]) -> None:
    assert outcome_record(_running(), outcome) is None


def test_a_large_result_stays_behind_its_uri() -> None:
    uri = f"s3://bucket/jobs/{JOB}/result.json"
    ended = outcome_record(_running(), {"job_id": JOB, "status": "SUCCEEDED", "result_uri": uri})
    assert ended is not None
    answer = ended.to_answer(with_outcome=True)
    assert answer["result_uri"] == uri and "result" not in answer


@pytest.mark.parametrize("uri", ["s3://", "s3://bucket", "s3://bucket/", "s3://Bad_Bucket/k"])
def test_a_result_uri_s3_would_not_accept_is_no_usable_end(uri: str) -> None:
    outcome = {"job_id": JOB, "status": "SUCCEEDED", "result_uri": uri}
    assert outcome_record(_running(), outcome) is None
