"""The SNS notification's shape: readable email, JSON default, filterable attributes."""

from __future__ import annotations

import json

from agentjobs.notifier import PREVIEW_CHARS, Notification
from agentjobs.protocol import JobKind, JobStatus
from agentjobs.record import JobError, JobRecord


def _record(**changes: object) -> JobRecord:
    base = JobRecord(
        job_id="job-1",
        session_id="session-" + "x" * 30,
        kind=JobKind.SYNTHETIC,
        status=JobStatus.SUCCEEDED,
        submitted_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:05.000Z",
        max_runtime_s=60,
        deadline_at="2026-01-01T00:01:00.000Z",
        finished_at="2026-01-01T00:00:04.000Z",
        result={"answer": 42},
    )
    return base.evolve(**changes)


def _published(record: JobRecord) -> tuple[dict[str, object], dict[str, object]]:
    request = Notification.from_record(record).publish_request("arn:aws:sns:us-east-1:1:t")
    message = json.loads(str(request["Message"]))
    return request, message


def test_message_is_json_structured_with_email_and_default() -> None:
    request, message = _published(_record())
    assert request["MessageStructure"] == "json"
    assert set(message) == {"default", "email"}
    assert "job-1" in message["email"] and "SUCCEEDED" in message["email"]


def test_default_document_has_the_contract_fields_and_a_preview() -> None:
    _, message = _published(_record())
    document = json.loads(message["default"])
    assert document == {
        "job_id": "job-1",
        "status": "SUCCEEDED",
        "kind": "synthetic",
        "session_id": "session-" + "x" * 30,
        "submitted_at": "2026-01-01T00:00:00.000Z",
        "finished_at": "2026-01-01T00:00:04.000Z",
        "result_preview": '{"answer":42}',
        "result_truncated": False,
    }


def test_large_inline_result_is_cut_to_a_preview() -> None:
    _, message = _published(_record(result="y" * 10_000))
    document = json.loads(message["default"])
    assert len(document["result_preview"]) == PREVIEW_CHARS
    assert document["result_truncated"] is True


def test_result_in_s3_is_pointed_to_not_previewed() -> None:
    _, message = _published(_record(result=None, result_uri="s3://b/jobs/job-1/result.json"))
    document = json.loads(message["default"])
    assert document["result_uri"] == "s3://b/jobs/job-1/result.json"
    assert "result_preview" not in document
    assert "s3://b/jobs/job-1/result.json" in message["email"]


def test_failed_job_carries_its_error() -> None:
    error = JobError(code="JOB_FAILED", message="boom")
    _, message = _published(_record(status=JobStatus.FAILED, result=None, error=error))
    document = json.loads(message["default"])
    assert document["error"] == {"code": "JOB_FAILED", "message": "boom"}
    assert "result_preview" not in document
    assert "boom" in message["email"]


def test_attributes_let_subscribers_filter_by_status_and_kind() -> None:
    request, _ = _published(_record(status=JobStatus.LOST, result=None))
    attributes = request["MessageAttributes"]
    assert isinstance(attributes, dict)
    assert attributes["status"] == {"DataType": "String", "StringValue": "LOST"}
    assert attributes["kind"] == {"DataType": "String", "StringValue": "synthetic"}


def test_the_same_job_always_gives_the_same_message() -> None:
    assert _published(_record()) == _published(_record())
