"""Reading the SQS inbox subscribed to the notification topic, as the tests check it."""

from __future__ import annotations

from typing import Any

from agentjobs.cli.inbox import unwrap


def drain_inbox(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete every message now in the inbox; each as its notification's
    `default` JSON (`document`) and the SNS message attributes (`attributes`)."""
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            document, envelope = unwrap(message["Body"])
            found.append(
                {
                    "document": document,
                    "attributes": envelope.get("MessageAttributes", {}),
                }
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
