"""The fast completion path: the SQS queue finished jobs are signalled on, and its DLQ."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge

VISIBILITY_PER_CONSUMER_TIMEOUT = 6
"""AWS's advice for a Lambda event source: six times the function's timeout, so that a
throttled batch is retried before its messages become visible to another consumer."""
MAX_RECEIVES = 3
RETENTION = Duration.hours(1)
"""A signal is a hint: within a minute the schedule has swept its job anyway."""


@dataclass(frozen=True)
class CompletionSignalsProps:
    """How long the consumer (the poller Lambda) may hold a batch."""

    consumer_timeout: Duration


class CompletionSignals(Construct):
    """A queue the agent sends one message to per finished job, consumed by the poller, with
    a dead-letter queue for signals the poller failed on repeatedly (their jobs are still
    swept by the schedule: the DLQ only counts failures for the alarm)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, props: CompletionSignalsProps
    ) -> None:
        super().__init__(scope, construct_id)
        timeout_s = props.consumer_timeout.to_seconds()
        if timeout_s < 1:
            raise ValueError(
                f"consumer_timeout={timeout_s} s: the poller's timeout must be at least 1 s"
            )
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION,
            visibility_timeout=Duration.seconds(timeout_s * VISIBILITY_PER_CONSUMER_TIMEOUT),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVES
            ),
        )
        acknowledge(
            self.dead_letter_queue,
            {
                "AwsSolutions-SQS3": "This queue is itself the dead-letter queue of the "
                "completion signals; a queue behind it would hold nothing new.",
            },
        )

    def grant_signal(self, grantee: iam.IGrantable) -> None:
        """Allow sending signals, and nothing else (no receive, no queue attributes)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SignalCompletion",
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
            )
        )
