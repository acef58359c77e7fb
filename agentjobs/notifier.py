"""The SNS notification of a finished job: readable email, JSON for machines, attributes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentjobs.protocol import encode_json
from agentjobs.record import JobError, JobRecord

PREVIEW_CHARS = 500
"""How much of an inline result a notification carries; the whole result is in the table."""

SUBJECT_CHARS = 100
"""SNS refuses an email subject longer than this."""


class NotifyError(Exception):
    """The notification could not be published; the next poll publishes it again."""


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

    @classmethod
    def from_record(cls, record: JobRecord) -> Notification:
        """The notification for a job record in a terminal status."""
        inline = record.result_uri is None and record.status == "SUCCEEDED"
        return cls(
            job_id=record.job_id,
            status=str(record.status),
            kind=str(record.kind),
            session_id=record.session_id,
            submitted_at=record.submitted_at,
            finished_at=record.finished_at,
            result=record.result if inline else None,
            has_result=inline,
            result_uri=record.result_uri,
            error=record.error,
        )

    def document(self) -> dict[str, Any]:
        """The JSON object machine subscribers receive (the `default` message)."""
        body: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status,
            "kind": self.kind,
            "session_id": self.session_id,
            "submitted_at": self.submitted_at,
            "finished_at": self.finished_at,
        }
        if self.result_uri is not None:
            body["result_uri"] = self.result_uri
        elif self.has_result:
            text, truncated = result_preview(self.result)
            body["result_preview"] = text
            body["result_truncated"] = truncated
        if self.error is not None:
            body["error"] = self.error.to_wire()
        return body

    def subject(self) -> str:
        """The email subject: the job and how it ended."""
        kind = f" ({self.kind})" if self.kind else ""
        return f"agentjobs: job {self.job_id}{kind} {self.status}"[:SUBJECT_CHARS]

    def email_text(self) -> str:
        """The readable text sent to email subscribers."""
        lines = [
            f"Job {self.job_id} finished: {self.status}.",
            "",
            f"Kind:       {self.kind or 'unknown'}",
            f"Session:    {self.session_id or 'unknown'}",
            f"Submitted:  {self.submitted_at or 'unknown'}",
            f"Finished:   {self.finished_at or 'unknown'}",
            "",
        ]
        if self.result_uri is not None:
            lines.append(f"The result is stored at {self.result_uri}.")
        elif self.has_result:
            text, truncated = result_preview(self.result)
            lines += ["Result" + (" (beginning):" if truncated else ":"), text]
        if self.error is not None:
            lines.append(f"Error {self.error.code}: {self.error.message}")
        lines += [
            "",
            f"Full record: agentjobs status {self.job_id}; result: agentjobs result {self.job_id}",
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
                "status": {"DataType": "String", "StringValue": self.status},
                "kind": {"DataType": "String", "StringValue": self.kind or "unknown"},
                "job_id": {"DataType": "String", "StringValue": self.job_id},
            },
        }


def result_preview(result: Any) -> tuple[str, bool]:
    """A short text of a result (the string itself, or its JSON) and whether it was cut."""
    text = result if isinstance(result, str) else encode_json(result)
    if len(text) <= PREVIEW_CHARS:
        return text, False
    return text[: PREVIEW_CHARS - 1] + "\u2026", True


class Notifier:
    """Publishes notifications to the SNS topic named by TOPIC_ARN."""

    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self.topic_arn = topic_arn

    def publish(self, notification: Notification) -> str:
        """Publish one notification; return the SNS message id."""
        try:
            answer = self._sns.publish(**notification.publish_request(self.topic_arn))
        except (ClientError, BotoCoreError) as exc:
            raise NotifyError(f"SNS refused the notification of job {notification.job_id}") from exc
        return str(answer.get("MessageId", ""))
