"""Read job notifications from the local inbox queue, unwrapping SNS's envelope."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentjobs.cli.errors import explain_aws_error

_SQS_MAX_BATCH = 10
_SQS_MAX_WAIT_S = 20
_RECHECK_S = 0.5


@dataclass(frozen=True)
class ReceivedNotification:
    """One message as the inbox received it: SNS's envelope and the job message inside."""

    message: dict[str, Any]
    """The `default` JSON of the notification (job_id, status, kind, ...); {} if not JSON."""
    envelope: dict[str, Any]
    """SNS's envelope (Type, MessageId, TopicArn, Subject, Timestamp, MessageAttributes)."""
    receipt_handle: str

    @property
    def job_id(self) -> str | None:
        """The job the notification is about."""
        value = self.message.get("job_id")
        return value if isinstance(value, str) else None

    def to_json(self) -> dict[str, Any]:
        """The notification for `--json`: the message and the envelope's metadata."""
        envelope = {k: v for k, v in self.envelope.items() if k != "Message"}
        return {"message": self.message, "envelope": envelope}


def unwrap(body: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job message and the SNS envelope of an SQS body (raw delivery off)."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return {}, {"Message": body}
    if not isinstance(envelope, dict):
        return {}, {"Message": body}
    inner = envelope.get("Message", "")
    try:
        message = json.loads(inner) if isinstance(inner, str) else inner
    except ValueError:
        message = {"text": inner}
    return (message if isinstance(message, dict) else {"text": inner}), envelope


def receive(
    sqs: Any, queue_url: str, *, max_messages: int, wait_s: float, job_id: str | None, keep: bool
) -> list[ReceivedNotification]:
    """Up to `max_messages` notifications (for `job_id` only, when given), waiting up to
    `wait_s` for the first. Shown messages are deleted unless `keep`; messages about other
    jobs are left in the queue."""
    found: list[ReceivedNotification] = []
    seen: set[str] = set()
    deadline = time.monotonic() + wait_s
    # Messages left for later must become visible again at once, not after SQS's 30 s.
    hide_s = 0 if keep or job_id else 30
    while len(found) < max_messages:
        remaining = deadline - time.monotonic()
        long_poll = 0 if found else int(min(max(remaining, 0), _SQS_MAX_WAIT_S))
        fresh = [
            m
            for m in _receive_batch(sqs, queue_url, long_poll, hide_s)
            if m["MessageId"] not in seen
        ]
        if not fresh:
            if found or remaining <= 0:
                return found
            # Only messages about other jobs came back; give the wanted one time to arrive.
            time.sleep(min(_RECHECK_S, max(remaining, 0)))
            continue
        for raw in fresh:
            seen.add(raw["MessageId"])
            message, envelope = unwrap(raw["Body"])
            note = ReceivedNotification(message, envelope, raw["ReceiptHandle"])
            if (job_id is None or note.job_id == job_id) and len(found) < max_messages:
                found.append(note)
                if not keep:
                    _call(sqs.delete_message, queue_url, ReceiptHandle=note.receipt_handle)
            elif hide_s:
                _call(
                    sqs.change_message_visibility,
                    queue_url,
                    ReceiptHandle=raw["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
    return found


def _receive_batch(sqs: Any, queue_url: str, wait_s: int, hide_s: int) -> list[dict[str, Any]]:
    answer = _call(
        sqs.receive_message,
        queue_url,
        MaxNumberOfMessages=_SQS_MAX_BATCH,
        WaitTimeSeconds=wait_s,
        VisibilityTimeout=hide_s,
    )
    messages: list[dict[str, Any]] = answer.get("Messages", [])
    return messages


def _call(operation: Any, queue_url: str, **kwargs: Any) -> Any:
    try:
        return operation(QueueUrl=queue_url, **kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise explain_aws_error(exc, f"reading the inbox queue {queue_url}") from exc
