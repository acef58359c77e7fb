"""The poller in the template: its function, schedule, dead-letter queue and role."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from agentjobs import schema
from tests.infra.conftest import Synth
from tests.infra.template import (
    actions_of,
    by_sid,
    getatt,
    joined,
    ref,
    statements,
)


def test_poller_lambda_runtime_architecture_timeout_tracing_and_environment(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    default_synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Handler": "handler.handler",
            "Timeout": 55,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": {"LogGroup": Match.any_value()},
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "JOBS_TABLE": ref(ids["table"]),
                        "RESULTS_BUCKET": ref(ids["bucket"]),
                        "TOPIC_ARN": ref(ids["jobs_topic"]),
                        "AGENT_RUNTIME_ARN": getatt(ids["runtime"], "AgentRuntimeArn"),
                        "AGENT_RUNTIME_QUALIFIER": "DEFAULT",
                        "POWERTOOLS_SERVICE_NAME": "poller",
                        "POWERTOOLS_METRICS_NAMESPACE": "AgentJobs",
                    }
                )
            },
        },
    )


def test_poller_log_group_has_retention(default_synth: Synth, ids: dict[str, str]) -> None:
    function = default_synth.raw["Resources"][ids["function"]]["Properties"]
    log_group = function["LoggingConfig"]["LogGroup"]["Ref"]
    retention = default_synth.raw["Resources"][log_group]["Properties"]["RetentionInDays"]
    assert retention == 90


def test_schedule_runs_the_poller_every_minute_with_retries_and_dead_letter_queue(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    default_synth.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "State": "ENABLED",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": Match.object_like(
                {
                    "Arn": getatt(ids["function"]),
                    "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60},
                    "DeadLetterConfig": {"Arn": getatt(ids["queue"])},
                }
            ),
        },
    )


def test_dead_letter_queue_is_encrypted_and_tls_only(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    template = default_synth.template
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [ref(ids["queue"])],
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            ),
        },
    )


def test_poller_invokes_and_stops_sessions_on_runtime_and_default_endpoint_only(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    statement = by_sid(default_synth, ids["poller_role"], "PollAndStopSessions")
    runtime_arn = getatt(ids["runtime"], "AgentRuntimeArn")
    assert sorted(actions_of(statement)) == [
        "bedrock-agentcore:InvokeAgentRuntime",
        "bedrock-agentcore:StopRuntimeSession",
    ]
    assert statement["Resource"] == [runtime_arn, joined(runtime_arn, "/runtime-endpoint/DEFAULT")]
    agentcore = [
        s
        for s in statements(default_synth, ids["poller_role"])
        if any(a.startswith("bedrock-agentcore:") for a in actions_of(s))
    ]
    assert agentcore == [statement]


def test_poller_reads_and_writes_records_and_queries_the_attention_index(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    role = ids["poller_role"]
    records = by_sid(default_synth, role, "JobRecords")
    assert sorted(actions_of(records)) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert records["Resource"] == getatt(ids["table"])
    index = by_sid(default_synth, role, "JobsInFlight")
    assert actions_of(index) == ["dynamodb:Query"]
    assert index["Resource"] == joined(getatt(ids["table"]), f"/index/{schema.ATTENTION_INDEX}")


def test_poller_reads_outcomes_writes_only_results_and_publishes_to_the_jobs_topic(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    role = ids["poller_role"]
    outcome = joined(getatt(ids["bucket"]), "/jobs/*/outcome.json")
    result = joined(getatt(ids["bucket"]), "/jobs/*/result.json")
    reads = by_sid(default_synth, role, "ReadOutcomes")
    assert actions_of(reads) == ["s3:GetObject"]
    assert reads["Resource"] == [outcome, result]
    writes = by_sid(default_synth, role, "WriteResults")
    assert actions_of(writes) == ["s3:PutObject"]
    # The poller never writes an outcome, so it cannot overwrite the agent's.
    assert writes["Resource"] == result
    listing = by_sid(default_synth, role, "ListOutcomes")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": f"{schema.RESULT_PREFIX}*"}}
    publish = [s for s in statements(default_synth, role) if "sns:Publish" in actions_of(s)]
    assert [s["Resource"] for s in publish] == [ref(ids["jobs_topic"])]
    kms = [s for s in statements(default_synth, role) if "kms:Decrypt" in actions_of(s)]
    assert {json.dumps(s["Resource"]) for s in kms} == {
        json.dumps(getatt(ids["store_key"])),
        json.dumps(
            getatt(
                default_synth.only(
                    "AWS::KMS::Key", {"Description": "agentjobs: job notifications and alarms"}
                )
            )
        ),
    }
    assert all(sorted(actions_of(s)) == ["kms:Decrypt", "kms:GenerateDataKey"] for s in kms)
