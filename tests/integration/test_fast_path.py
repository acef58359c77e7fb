"""The fast completion path on the local stack: a finished job is notified through its SQS
signal, before the schedule's next tick; with LOCAL_FASTPATH=0 only a tick notifies it."""

from __future__ import annotations

import uuid
from pathlib import Path

from testbed.local_stack import LocalStack, Notified, local_stack
from tests.support.stack_waits import wait_until

LONG_PERIOD_S = 60.0
"""Longer than the whole test: after the tick at start-up, no other tick runs."""


def notification_of(stack: LocalStack, job_id: str, timeout_s: float = 40) -> Notified:
    sqs = stack.client("sqs")
    found: list[Notified] = []

    def arrived() -> bool:
        found.extend(n for n in stack.take_notifications(sqs) if n.job_id == job_id)
        return bool(found)

    wait_until(arrived, f"no notification of {job_id}", timeout_s)
    return found[0]


def completion_queue_counts(stack: LocalStack, queue_url: str) -> tuple[int, int]:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def test_finished_job_is_notified_by_its_signal_before_the_next_scheduled_tick(
    tmp_path: Path,
) -> None:
    with local_stack(tmp_path, poller_interval_s=LONG_PERIOD_S, fastpath=True) as stack:
        values = stack.values()
        assert values["COMPLETION_QUEUE_URL"].endswith("-completions")
        # The schedule ticks once at start-up; the next tick is a period away.
        wait_until(lambda: stack.ticks_done() == 1, "the start-up tick did not finish")
        session_id = f"fast-path-{uuid.uuid4()}"
        job_id = stack.submit(
            stack.client("bedrock-agentcore"), session_id, kind="synthetic", input={"seconds": 0.5}
        )

        notified = notification_of(stack, job_id)

        assert notified.status == "SUCCEEDED"
        assert stack.ticks_done() == 1, "a scheduled tick ran: the notification proves nothing"
        # The event source logs a batch once the handler has returned (after the publish).
        wait_until(lambda: stack.signal_batches() >= 1, "the event source handled no signal")
        # The signal was consumed and deleted, and the fast path also stopped the session.
        assert completion_queue_counts(stack, values["COMPLETION_QUEUE_URL"]) == (0, 0)
        wait_until(
            lambda: stack.session_states().get(session_id) == "Stopped",
            "the spent session was not stopped",
        )
        item = stack.client("dynamodb").get_item(
            TableName=values["JOBS_TABLE"], Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )["Item"]
        assert item["finished_at"]["S"] == notified.finished_at
        assert "notified_at" in item
        assert "attention" not in item


def test_without_the_fast_path_only_a_scheduled_tick_notifies(tmp_path: Path) -> None:
    with local_stack(tmp_path, poller_interval_s=1, fastpath=False) as stack:
        values = stack.values()
        assert "COMPLETION_QUEUE_URL" not in values
        queue_url = (
            stack.client("sqs")
            .get_queue_url(QueueName=values["JOBS_TABLE"].replace("-jobs", "-completions"))
            .get("QueueUrl")
        )
        wait_until(lambda: stack.ticks_done() >= 1, "the start-up tick did not finish")
        ticks_before = stack.ticks_done()
        job_id = stack.submit(
            stack.client("bedrock-agentcore"),
            f"schedule-only-{uuid.uuid4()}",
            kind="synthetic",
            input={"seconds": 0.5},
        )

        notified = notification_of(stack, job_id)

        assert notified.status == "SUCCEEDED"
        wait_until(lambda: stack.ticks_done() > ticks_before, "no tick ran after the submit")
        assert stack.signal_batches() == 0
        # No agent was told where to signal, so nothing was ever sent.
        assert completion_queue_counts(stack, queue_url) == (0, 0)
