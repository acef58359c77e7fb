"""The job record: DynamoDB items and wire answers round-trip without loss."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentjobs.protocol import ErrorCode, JobStatus
from agentjobs.record import (
    JobError,
    JobRecord,
    Progress,
    from_item,
    new_job_id,
    request_fingerprint,
    to_item,
)


def _record(**changes: Any) -> JobRecord:
    base = JobRecord(
        job_id="j1",
        session_id="s" * 40,
        kind="synthetic",
        status=JobStatus.RUNNING,
        submitted_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        max_runtime_s=3600.0,
        deadline_at="2026-01-01T01:00:00.000Z",
        progress=Progress(12.5, "step 1"),
        client_token="tok",
        owner="alice",
        expires_at=1_770_000_000,
    )
    return base.evolve(**changes)


@pytest.mark.parametrize(
    "record",
    [
        _record(),
        _record(client_token=None, owner=None, expires_at=None),
        _record(
            status=JobStatus.SUCCEEDED,
            finished_at="2026-01-01T00:10:00.000Z",
            result={"rows": 3, "ratio": 0.25, "empty": "", "nested": [[], {}], "none": None},
        ),
        _record(
            status=JobStatus.SUCCEEDED,
            finished_at="2026-01-01T00:10:00.000Z",
            result_uri="s3://bucket/jobs/j1/result.json",
        ),
        _record(
            status=JobStatus.FAILED,
            finished_at="2026-01-01T00:10:00.000Z",
            error=JobError.of(ErrorCode.JOB_FAILED, "disk full"),
        ),
        _record(
            status=JobStatus.LOST,
            notified_at="2026-01-01T00:20:00.000Z",
            session_stopped_at="2026-01-01T00:19:00.000Z",
            last_seen_at="2026-01-01T00:18:00.000Z",
            poll_failures=3,
            max_runtime_s=0.5,
        ),
    ],
    ids=["running", "minimal", "inline-result", "result-uri", "failed", "poller-fields"],
)
def test_record_round_trips_through_a_dynamodb_item(record: JobRecord) -> None:
    assert from_item(to_item(record)) == record


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200)
@given(result=json_values)
def test_any_json_result_survives_the_item(result: Any) -> None:
    record = _record(status=JobStatus.SUCCEEDED, result=result)
    assert from_item(to_item(record)).result == result


def test_result_is_stored_as_json_text_only_when_inline() -> None:
    assert to_item(_record(status=JobStatus.SUCCEEDED, result=[1]))["result"] == {"S": "[1]"}
    with_uri = _record(status=JobStatus.SUCCEEDED, result_uri="s3://b/k")
    assert "result" not in to_item(with_uri)
    assert "result" not in to_item(_record())


@pytest.mark.parametrize(
    "item",
    [
        {},
        {"job_id": {"S": "j"}},
        {**to_item(_record()), "status": {"S": "DANCING"}},
        {**to_item(_record()), "max_runtime_s": {"N": "soon"}},
    ],
)
def test_a_malformed_item_raises_value_error(item: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a job record"):
        from_item(item)


def test_status_answer_has_progress_but_no_outcome() -> None:
    record = _record(status=JobStatus.SUCCEEDED, result={"a": 1}, finished_at="t")
    answer = record.to_answer(with_outcome=False)
    assert answer == {
        "job_id": "j1",
        "session_id": "s" * 40,
        "kind": "synthetic",
        "status": "SUCCEEDED",
        "progress": {"percent": 12.5, "message": "step 1"},
        "submitted_at": "2026-01-01T00:00:00.000Z",
        "finished_at": "t",
    }
    assert record.to_answer(with_outcome=True)["result"] == {"a": 1}


def test_result_answer_carries_uri_or_error() -> None:
    with_uri = _record(status=JobStatus.SUCCEEDED, result_uri="s3://b/k")
    assert with_uri.to_answer(with_outcome=True)["result_uri"] == "s3://b/k"
    assert "result" not in with_uri.to_answer(with_outcome=True)
    failed = _record(status=JobStatus.FAILED, error=JobError("JOB_FAILED", "boom"))
    assert failed.to_answer(with_outcome=True)["error"] == {"code": "JOB_FAILED", "message": "boom"}
    assert "result" not in failed.to_answer(with_outcome=True)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ({"percent": 50, "message": "half"}, Progress(50.0, "half")),
        ({"percent": 250}, Progress(100.0, "")),
        ({"percent": -3, "message": 7}, Progress(0.0, "")),
        ({"percent": True}, Progress(0.0, "")),
        ("50%", Progress()),
    ],
)
def test_progress_is_read_leniently(wire: object, expected: Progress) -> None:
    assert Progress.from_wire(wire) == expected


def test_job_error_from_wire() -> None:
    assert JobError.from_wire({"code": "X", "message": "y"}) == JobError("X", "y")
    assert JobError.from_wire({"code": "X"}) is None
    assert JobError.from_wire("boom") is None


def test_client_token_gives_the_same_job_id_per_owner() -> None:
    assert new_job_id("tok", "alice") == new_job_id("tok", "alice")
    assert new_job_id("tok", "alice") != new_job_id("tok", "bob")
    assert new_job_id("tok") == new_job_id("tok", None)
    assert new_job_id() != new_job_id()
    assert len(new_job_id()) == 32


def test_client_token_is_scoped_to_the_session_when_there_is_no_owner() -> None:
    session_a, session_b = "a" * 40, "b" * 40
    assert new_job_id("tok", None, session_a) == new_job_id("tok", None, session_a)
    assert new_job_id("tok", None, session_a) != new_job_id("tok", None, session_b)
    # An owner's token names the same job from any session.
    assert new_job_id("tok", "alice", session_a) == new_job_id("tok", "alice", session_b)
    # An owner can never collide with a session of the same name.
    assert new_job_id("tok", session_a, session_b) != new_job_id("tok", None, session_a)


def test_request_fingerprint_is_canonical_json_of_kind_input_and_runtime() -> None:
    first = request_fingerprint("synthetic", {"seconds": 1, "fail": "x"}, 60.0)
    assert first == request_fingerprint("synthetic", {"fail": "x", "seconds": 1}, 60.0)
    expected = hashlib.sha256(
        b'{"input":{"fail":"x","seconds":1},"kind":"synthetic","max_runtime_s":60.0}'
    ).hexdigest()
    assert first == expected
    assert first != request_fingerprint("synthetic", {"seconds": 2, "fail": "x"}, 60.0)
    assert first != request_fingerprint("data_report", {"seconds": 1, "fail": "x"}, 60.0)
    assert first != request_fingerprint("synthetic", {"seconds": 1, "fail": "x"}, 61.0)


def test_fingerprint_survives_the_item() -> None:
    record = _record(request_fingerprint="f" * 64)
    assert from_item(to_item(record)).request_fingerprint == "f" * 64
    assert from_item(to_item(_record())).request_fingerprint is None
