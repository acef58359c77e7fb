"""The fast completion path in the template: the completion queue, its consumer and sender."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import Synth
from tests.infra.template import (
    SIGNAL_CONSUME_ACTIONS,
    actions_of,
    by_sid,
    getatt,
    ref,
    runtime_role,
    sqs_statements,
)


def test_completion_queue_is_encrypted_short_lived_and_dead_letters_after_three_receives(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    template = default_synth.template
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": 3600,
            # Six times the poller's 55 s timeout, as AWS advises for Lambda event sources.
            "VisibilityTimeout": 330,
            "RedrivePolicy": {
                "deadLetterTargetArn": getatt(ids["signal_dlq"]),
                "maxReceiveCount": 3,
            },
        },
    )
    dlq = default_synth.raw["Resources"][ids["signal_dlq"]]["Properties"]
    assert dlq == {"SqsManagedSseEnabled": True}


@pytest.mark.parametrize("queue", ["signal_queue", "signal_dlq"])
def test_completion_queues_refuse_requests_without_tls(
    default_synth: Synth, ids: dict[str, str], queue: str
) -> None:
    default_synth.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [ref(ids[queue])],
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "sqs:*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            ),
        },
    )


def test_poller_consumes_completion_signals_in_batches_reporting_item_failures(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    mappings = default_synth.template.find_resources("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 1
    default_synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": ref(ids["function"]),
            "EventSourceArn": getatt(ids["signal_queue"]),
            "BatchSize": 10,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 5},
            "MaximumBatchingWindowInSeconds": Match.absent(),
        },
    )


def test_poller_receives_and_deletes_signals_on_the_completion_queue_only(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    found = sqs_statements(default_synth, ids["poller_role"])
    assert len(found) == 1, found
    assert sorted(actions_of(found[0])) == SIGNAL_CONSUME_ACTIONS
    assert found[0]["Resource"] == getatt(ids["signal_queue"])
    assert found[0]["Effect"] == "Allow"


def test_agent_may_only_send_signals_to_the_completion_queue(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    role = runtime_role(default_synth, ids["runtime"])
    statement = by_sid(default_synth, role, "SignalCompletion")
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == getatt(ids["signal_queue"])
    assert sqs_statements(default_synth, role) == [statement]
