"""The fast completion path: one SQS message per finished job, telling the poller to look now."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


class SignalError(Exception):
    """The signal could not be sent; the poller's schedule still finds the job."""


@dataclass(frozen=True)
class CompletionSignal:
    """The message body. The poller acts on `job_id` alone: it re-reads the job from its
    session (or stored outcome) and the table, so a forged or stale signal moves nothing."""

    job_id: str
    session_id: str | None
    status: str
    finished_at: str | None

    def body(self) -> str:
        """The JSON body the poller's event parser reads (`{"job_id": ...}` and context)."""
        return json.dumps(
            {
                "job_id": self.job_id,
                "session_id": self.session_id,
                "status": self.status,
                "finished_at": self.finished_at,
            },
            separators=(",", ":"),
        )


class CompletionQueue:
    """The SQS queue named by COMPLETION_QUEUE_URL, which the poller Lambda consumes."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self.queue_url = queue_url

    def send(self, signal: CompletionSignal) -> None:
        """Send one signal; SignalError when SQS refuses or cannot be reached."""
        try:
            self._sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=signal.body(),
                MessageAttributes={
                    "status": {"DataType": "String", "StringValue": signal.status},
                },
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise SignalError(f"the completion queue refused the signal ({code})") from exc
        except BotoCoreError as exc:
            raise SignalError(
                f"the completion queue could not be reached ({type(exc).__name__})"
            ) from exc
