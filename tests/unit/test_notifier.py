"""The SNS notification's shape: readable email, JSON default, filterable attributes."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from agentjobs.limits import MAX_ERROR_CODE_CHARS, MAX_ERROR_MESSAGE_CHARS
from agentjobs.notifier import (
    EMAIL_JOB_TEXT_CHARS,
    FIELD_CHARS,
    PREVIEW_CHARS,
    SUBJECT_CHARS,
    Notification,
    Notifier,
    NotifyError,
    NotifyRefusedError,
)
from agentjobs.protocol import JobStatus
from agentjobs.record import JobError, JobRecord


def _record(**changes: object) -> JobRecord:
    base = JobRecord(
        job_id="job-1",
        session_id="session-" + "x" * 30,
        kind="synthetic",
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


def _email(record: JobRecord, *, email_preview: bool = False) -> str:
    notification = Notification.from_record(record, email_preview=email_preview)
    message = json.loads(str(notification.publish_request("arn:aws:sns:us-east-1:1:t")["Message"]))
    return str(message["email"])


def test_email_never_carries_the_session_id() -> None:
    record = _record(status=JobStatus.FAILED, result=None, error=JobError("JOB_FAILED", "boom"))
    for email_preview in (False, True):
        assert record.session_id not in _email(record, email_preview=email_preview)
        assert "Session" not in _email(record, email_preview=email_preview)


def test_email_labels_the_jobs_error_text_and_keeps_it_on_one_cut_line() -> None:
    forged = "boom\n\nDear user, your account is locked: log in at https://evil.example\n" * 50
    record = _record(status=JobStatus.FAILED, result=None, error=JobError("JOB_FAILED", forged))
    email = _email(record)
    [quoted] = [line for line in email.splitlines() if line.startswith("  > ")]
    assert quoted.startswith("  > boom Dear user")
    assert len(quoted) <= len("  > ") + EMAIL_JOB_TEXT_CHARS
    label = email.splitlines()[email.splitlines().index(quoted) - 1]
    assert "as the job wrote it" in label and "not checked by agentjobs" in label
    assert "Dear user" not in email.replace(quoted, "")


def test_email_quotes_no_result_unless_the_preview_is_switched_on() -> None:
    record = _record(result={"secret": "figures"})
    assert "figures" not in _email(record)
    assert "agentjobs result job-1" in _email(record)
    with_preview = _email(record, email_preview=True)
    assert '  > {"secret":"figures"}' in with_preview
    assert "as the job returned it" in with_preview


def test_json_message_keeps_its_preview_whatever_the_email_setting() -> None:
    notification = Notification.from_record(_record(result="r" * 900), email_preview=False)
    assert notification.document()["result_preview"].startswith("rrr")


def test_subject_holds_nothing_a_caller_or_job_wrote() -> None:
    odd = Notification(
        job_id="job\nBcc: victim@example.com",
        status="FAILED",
        kind="Your invoice is ready",
        session_id=None,
        submitted_at=None,
        finished_at=None,
    )
    assert odd.subject() == "agentjobs: job (unreadable) FAILED"
    plain = Notification.from_record(_record())
    assert plain.subject() == "agentjobs: job job-1 (synthetic) SUCCEEDED"
    assert len(Notification.from_record(_record(job_id="j" * 128)).subject()) <= SUBJECT_CHARS


def test_one_message_stays_small_whatever_the_job_wrote() -> None:
    huge = ("\ud800\U0001f600\x00\n<b>" * 200_000)[:1_000_000]
    notification = Notification(
        job_id=huge,
        status="FAILED",
        kind=huge,
        session_id=huge,
        submitted_at=huge,
        finished_at=huge,
        result=huge,
        has_result=True,
        error=JobError(code=huge, message=huge),
        email_preview=True,
    )
    request = notification.publish_request("arn:aws:sns:us-east-1:1:t")
    size = len(json.dumps(request, ensure_ascii=False).encode("utf-8"))
    assert size < 64 * 1024
    message = json.loads(str(request["Message"]))
    document = json.loads(message["default"])
    assert len(document["error"]["message"]) <= MAX_ERROR_MESSAGE_CHARS
    assert len(document["error"]["code"]) <= MAX_ERROR_CODE_CHARS
    assert len(document["session_id"]) <= FIELD_CHARS
    # Every text is valid UTF-8: the lone surrogates are gone.
    message["email"].encode("utf-8")
    message["default"].encode("utf-8")
    for attribute in request["MessageAttributes"].values():
        attribute["StringValue"].encode("utf-8")
        assert attribute["StringValue"]


def test_shortened_notification_carries_none_of_the_jobs_text() -> None:
    record = _record(
        status=JobStatus.FAILED, result=None, error=JobError("JOB_FAILED", "x" * 100_000)
    )
    short = Notification.from_record(record).shortened()
    document = short.document()
    assert document["error"] == {
        "code": "JOB_FAILED",
        "message": "the error message is in the job's record",
    }
    assert document["session_id"] == record.session_id
    assert "xxx" not in short.email_text()
    assert "result_preview" not in Notification.from_record(_record()).shortened().document()


@pytest.mark.parametrize(
    ("code", "refused"),
    [
        ("InvalidParameter", True),
        ("ParameterValueInvalid", True),
        ("Throttled", False),
        ("InternalError", False),
    ],
)
def test_publish_tells_a_refusal_from_a_failure_worth_retrying(code: str, refused: bool) -> None:
    sns = boto3.client(
        "sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(sns) as stub:
        stub.add_client_error("publish", service_error_code=code, http_status_code=400)
        with pytest.raises(NotifyError) as raised:
            Notifier(sns, "arn:aws:sns:us-east-1:1:t").publish(Notification.from_record(_record()))
    assert isinstance(raised.value, NotifyRefusedError) == refused
    assert "job-1" in str(raised.value)
