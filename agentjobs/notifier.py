"""The SNS notification of a finished job: readable email, JSON for machines, attributes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentjobs.limits import (
    MAX_ERROR_CODE_CHARS,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_S3_URI_CHARS,
    cap_job_text,
    cap_text,
)
from agentjobs.protocol import encode_json
from agentjobs.record import JobError, JobRecord, StoredJob

PREVIEW_CHARS = 500
"""How much of an inline result the JSON message carries; the whole result is in the table."""

SUBJECT_CHARS = 99
"""SNS accepts an email subject of fewer than 100 characters, ASCII, without line breaks."""

FIELD_CHARS = 256
"""Ids, kinds and times as published: ours are far shorter; a malformed record's may not be."""

EMAIL_JOB_TEXT_CHARS = 300
"""How much of a job's own text (its error message, its result) the email quotes."""

# What SNS answers a Publish it refuses for its content (a message over 256 KB, a subject or
# attribute it does not accept): the same message can never be published, so it is not
# retried like throttling or a 5xx. Codes as in the SNS Publish API reference.
_REFUSED_CODES = frozenset({"InvalidParameter", "ParameterValueInvalid", "ValidationException"})

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
"""A job id, kind, status or error code that may appear as it is in a subject or a label."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class NotifyError(Exception):
    """The notification could not be published; the next poll publishes it again."""


class NotifyRefusedError(NotifyError):
    """SNS refused the notification for its content: publishing it again cannot succeed."""


@dataclass(frozen=True)
class Notification:
    """What a subscriber is told about one finished job. Built only from the job's final
    record, so a re-published notification is identical to the first (same job_id, status)."""

    job_id: str
    status: str
    kind: str | None
    session_id: str | None
    submitted_at: str | None
    finished_at: str | None
    result: Any = None
    has_result: bool = False
    result_uri: str | None = None
    error: JobError | None = None
    email_preview: bool = False
    """Whether the email quotes the beginning of an inline result. Off by default: an email
    leaves the encrypted topic, and the result is the job's data, not ours."""
    attempt: int | None = None
    """A resumable job's last attempt (None for a job that is not resumable)."""
    max_attempts: int | None = None

    @classmethod
    def from_record(cls, job: StoredJob, *, email_preview: bool = False) -> Notification:
        """The notification of a job in a terminal status, as the table holds it (a malformed
        record's too: whatever of it could be read is published)."""
        inline = job.has_inline_result
        attempt: int | None = None
        max_attempts: int | None = None
        if isinstance(job, JobRecord) and (job.resumable or job.max_attempts > 1):
            attempt, max_attempts = job.attempt, job.max_attempts
        return cls(
            job_id=job.job_id,
            status=str(job.status) if job.status is not None else "UNKNOWN",
            kind=str(job.kind) if job.kind is not None else None,
            session_id=job.session_id,
            submitted_at=job.submitted_at,
            finished_at=job.finished_at,
            result=job.result if inline else None,
            has_result=inline,
            result_uri=job.result_uri,
            error=job.error,
            email_preview=email_preview,
            attempt=attempt,
            max_attempts=max_attempts,
        )

    def shortened(self) -> Notification:
        """This notification without any of the job's own text (no result preview, the error
        reduced to its code): what is published when SNS refused the full one."""
        error = None
        if self.error is not None:
            code = self.error.code if _NAME.fullmatch(self.error.code) else "JOB_FAILED"
            error = JobError(code, "the error message is in the job's record")
        return replace(self, result=None, has_result=False, error=error, email_preview=False)

    def document(self) -> dict[str, Any]:
        """The JSON object machine subscribers receive (the `default` message)."""
        body: dict[str, Any] = {
            "job_id": _field(self.job_id),
            "status": _field(self.status),
            "kind": _optional_field(self.kind),
            "session_id": _optional_field(self.session_id),
            "submitted_at": _optional_field(self.submitted_at),
            "finished_at": _optional_field(self.finished_at),
        }
        if self.attempt is not None:
            body["attempt"] = self.attempt
            body["max_attempts"] = self.max_attempts
        if self.result_uri is not None:
            body["result_uri"] = cap_job_text(self.result_uri, MAX_S3_URI_CHARS)
        elif self.has_result:
            text, truncated = result_preview(self.result)
            body["result_preview"] = text
            body["result_truncated"] = truncated
        if self.error is not None:
            body["error"] = {
                "code": cap_job_text(self.error.code, MAX_ERROR_CODE_CHARS),
                "message": cap_job_text(self.error.message, MAX_ERROR_MESSAGE_CHARS),
            }
        return body

    def subject(self) -> str:
        """The email subject: the job and how it ended, nothing a caller or a job wrote."""
        kind = f" ({self.kind})" if self.kind and _NAME.fullmatch(self.kind) else ""
        return f"agentjobs: job {_name(self.job_id)}{kind} {_name(self.status)}"[:SUBJECT_CHARS]

    def email_text(self) -> str:
        """The readable text sent to email subscribers. The session id stays out (it lets
        whoever holds it invoke the session); text the job wrote is labelled, quoted on one
        line and cut, so that it cannot pass for a message of ours."""
        job = _name(self.job_id)
        lines = [
            f"Job {job} finished: {_name(self.status)}.",
            "",
            f"Kind:       {_name(self.kind or 'unknown')}",
            f"Submitted:  {_plain(self.submitted_at or 'unknown', 40)}",
            f"Finished:   {_plain(self.finished_at or 'unknown', 40)}",
        ]
        if self.attempt is not None and self.attempt > 1:
            # A resumed job: its session was lost (or its work retried) on the way.
            lines.append(f"Attempts:   took {self.attempt} attempts (at most {self.max_attempts})")
        lines.append("")
        if self.result_uri is not None:
            lines.append(f"The result is stored at {_plain(self.result_uri, MAX_S3_URI_CHARS)}.")
        elif self.has_result and self.email_preview:
            text, _ = result_preview(self.result)
            lines += [
                f"Result, as the job returned it (not checked by agentjobs; at most "
                f"{EMAIL_JOB_TEXT_CHARS} characters):",
                f"  > {_plain(text, EMAIL_JOB_TEXT_CHARS)}",
            ]
        elif self.has_result:
            lines.append(f"The result is in the job table: agentjobs result {job}")
        if self.error is not None:
            lines += [
                f"Error code: {_name(self.error.code)}",
                f"Error message, as the job wrote it (not checked by agentjobs; at most "
                f"{EMAIL_JOB_TEXT_CHARS} characters):",
                f"  > {_plain(self.error.message, EMAIL_JOB_TEXT_CHARS)}",
            ]
        lines += [
            "",
            f"Full record: agentjobs status {job}; result: agentjobs result {job}",
        ]
        return "\n".join(lines)

    def publish_request(self, topic_arn: str) -> dict[str, Any]:
        """The keyword arguments of the SNS Publish call for this notification."""
        return {
            "TopicArn": topic_arn,
            "Subject": self.subject(),
            "MessageStructure": "json",
            "Message": json.dumps(
                {"default": encode_json(self.document()), "email": self.email_text()}
            ),
            "MessageAttributes": {
                "status": _attribute(self.status),
                "kind": _attribute(self.kind if self.kind and _NAME.fullmatch(self.kind) else ""),
                "job_id": _attribute(_plain(self.job_id, FIELD_CHARS)),
            },
        }


def result_preview(result: Any) -> tuple[str, bool]:
    """A short text of a result (the string itself, or its JSON) and whether it was cut."""
    text = result if isinstance(result, str) else encode_json(result)
    return cap_job_text(text, PREVIEW_CHARS), len(text) > PREVIEW_CHARS


def _field(text: str) -> str:
    return cap_job_text(text, FIELD_CHARS)


def _optional_field(text: str | None) -> str | None:
    return None if text is None else _field(text)


def _plain(text: str, limit: int) -> str:
    """Text on one line (control characters and line breaks become spaces), cut to `limit`."""
    return cap_job_text(_CONTROL.sub(" ", cap_text(text, limit)), limit)


def _name(text: str) -> str:
    return text if _NAME.fullmatch(text) else "(unreadable)"


def _attribute(value: str) -> dict[str, str]:
    # SNS refuses an empty String attribute value.
    return {"DataType": "String", "StringValue": value or "unknown"}


class Notifier:
    """Publishes notifications to the SNS topic named by TOPIC_ARN."""

    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self.topic_arn = topic_arn

    def publish(self, notification: Notification) -> str:
        """Publish one notification; return the SNS message id. Raises NotifyRefusedError
        when SNS refuses it for its content, NotifyError for anything a retry may cure."""
        try:
            answer = self._sns.publish(**notification.publish_request(self.topic_arn))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _REFUSED_CODES:
                raise NotifyRefusedError(
                    f"SNS refused the notification of job {_name(notification.job_id)} ({code})"
                ) from exc
            raise NotifyError(
                f"SNS did not take the notification of job {_name(notification.job_id)}"
            ) from exc
        except BotoCoreError as exc:
            raise NotifyError(
                f"SNS could not be reached for the notification of job {_name(notification.job_id)}"
            ) from exc
        return str(answer.get("MessageId", ""))
