"""The synthesized AgentJobs template: every resource property the design relies on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from agentjobs import schema
from agentjobs.model_ids import DEFAULT_MODEL_ID
from tests.infra.conftest import EMAILS, Synth

JOB_ALARM_METRICS = ("JobsFailed", "JobsLost", "JobsTimedOut", "JobsOverdue")
DASHBOARD_METRICS = (
    "JobsPolled",
    "JobsSucceeded",
    "JobsFailed",
    "JobsCancelled",
    "JobsTimedOut",
    "JobsLost",
    "NotificationsSent",
    "TickDurationMs",
    "PollErrors",
)


def getatt(logical_id: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def joined(*parts: Any) -> dict[str, Any]:
    return {"Fn::Join": ["", list(parts)]}


def statements(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to one role."""
    found: list[dict[str, Any]] = []
    for policy in synth.template.find_resources("AWS::IAM::Policy").values():
        if ref(role_logical_id) in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def by_sid(synth: Synth, role_logical_id: str, sid: str) -> dict[str, Any]:
    matches = [s for s in statements(synth, role_logical_id) if s.get("Sid") == sid]
    assert len(matches) == 1, f"{sid}: {matches}"
    return matches[0]


@pytest.fixture(scope="module")
def ids(default_synth: Synth) -> dict[str, str]:
    """Logical ids found by resource type and shape, never written down."""
    s = default_synth
    return {
        "table": s.only("AWS::DynamoDB::Table"),
        "bucket": s.only(
            "AWS::S3::Bucket",
            {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        Match.object_like(
                            {
                                "ServerSideEncryptionByDefault": Match.object_like(
                                    {"SSEAlgorithm": "aws:kms"}
                                )
                            }
                        )
                    ]
                }
            },
        ),
        "runtime": s.only("AWS::BedrockAgentCore::Runtime"),
        "function": s.only("AWS::Lambda::Function"),
        "queue": s.only("AWS::SQS::Queue", {"MessageRetentionPeriod": 1209600}),
        "signal_queue": s.only("AWS::SQS::Queue", {"RedrivePolicy": Match.any_value()}),
        "signal_dlq": s.only(
            "AWS::SQS::Queue",
            {"MessageRetentionPeriod": Match.absent(), "RedrivePolicy": Match.absent()},
        ),
        "schedule": s.only("AWS::Scheduler::Schedule"),
        "jobs_topic": s.only("AWS::SNS::Topic", {"DisplayName": "agentjobs: finished jobs"}),
        "alarm_topic": s.only("AWS::SNS::Topic", {"DisplayName": "agentjobs: operational alarms"}),
        "store_key": s.only("AWS::KMS::Key", {"Description": "agentjobs: job records and results"}),
        "poller_role": s.only(
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": Match.object_like(
                    {
                        "Statement": [
                            Match.object_like({"Principal": {"Service": "lambda.amazonaws.com"}})
                        ]
                    }
                )
            },
        ),
    }


def runtime_role(synth: Synth, runtime_id: str) -> str:
    role_arn = synth.raw["Resources"][runtime_id]["Properties"]["RoleArn"]
    return str(role_arn["Fn::GetAtt"][0])


# --- job store -------------------------------------------------------------------------------


def test_table_is_derived_from_the_shared_schema(default_synth: Synth, ids: dict[str, str]) -> None:
    definition = schema.table_definition()
    table = default_synth.raw["Resources"][ids["table"]]["Properties"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        definition["AttributeDefinitions"], key=str
    )
    default_synth.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": definition["KeySchema"],
            "GlobalSecondaryIndexes": [
                Match.object_like(
                    {
                        "IndexName": index["IndexName"],
                        "KeySchema": index["KeySchema"],
                        "Projection": index["Projection"],
                    }
                )
                for index in definition["GlobalSecondaryIndexes"]
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    )


def test_table_has_pitr_customer_managed_key_and_is_retained_except_on_create(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    default_synth.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": Match.object_like(
                {
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {
                        "SSEEnabled": True,
                        "SSEType": "KMS",
                        "KMSMasterKeyId": getatt(ids["store_key"]),
                    },
                    # Deletion protection would make a failed first create's rollback fail.
                    "DeletionProtectionEnabled": Match.absent(),
                }
            ),
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_every_kms_key_rotates_and_the_data_key_is_retained_except_on_create(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    keys = default_synth.template.find_resources("AWS::KMS::Key")
    assert len(keys) == 2
    assert all(key["Properties"]["EnableKeyRotation"] is True for key in keys.values())
    assert keys[ids["store_key"]]["DeletionPolicy"] == "RetainExceptOnCreate"


def test_results_bucket_is_private_tls_only_encrypted_logged_expiring_and_retained(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    template = default_synth.template
    bucket = default_synth.raw["Resources"][ids["bucket"]]
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "KMSMasterKeyID": getatt(ids["store_key"]),
                "SSEAlgorithm": "aws:kms",
            },
        }
    ]
    rules = props["LifecycleConfiguration"]["Rules"]
    assert [r["ExpirationInDays"] for r in rules] == [30]
    assert "DestinationBucketName" in props["LoggingConfiguration"]
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": ref(ids["bucket"]),
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                ),
                "Version": "2012-10-17",
            },
        },
    )


# --- agent runtime ---------------------------------------------------------------------------


def test_runtime_runs_the_code_asset_with_lifecycle_and_environment(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    default_synth.template.has_resource_properties(
        "AWS::BedrockAgentCore::Runtime",
        {
            "AgentRuntimeArtifact": {
                "CodeConfiguration": {
                    "Code": {
                        "S3": Match.object_like(
                            {"Prefix": Match.string_like_regexp(r"^[0-9a-f]{64}\.zip$")}
                        )
                    },
                    "EntryPoint": ["main.py"],
                    "Runtime": "PYTHON_3_13",
                }
            },
            "LifecycleConfiguration": {"IdleRuntimeSessionTimeout": 900, "MaxLifetime": 28800},
            "EnvironmentVariables": {
                "JOBS_TABLE": ref(ids["table"]),
                "RESULTS_BUCKET": ref(ids["bucket"]),
                "MODEL_ID": DEFAULT_MODEL_ID,
                "RESULT_RETENTION_DAYS": "30",
                "COMPLETION_QUEUE_URL": ref(ids["signal_queue"]),
            },
            "ProtocolConfiguration": "HTTP",
        },
    )


def test_agent_role_writes_records_outcomes_and_results_and_reads_inputs_only(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    role = runtime_role(default_synth, ids["runtime"])
    records = by_sid(default_synth, role, "JobRecords")
    assert sorted(actions_of(records)) == ["dynamodb:GetItem", "dynamodb:PutItem"]
    assert records["Resource"] == getatt(ids["table"])
    results = by_sid(default_synth, role, "WriteResults")
    assert actions_of(results) == ["s3:PutObject"]
    assert results["Resource"] == [
        joined(getatt(ids["bucket"]), "/jobs/*/outcome.json"),
        joined(getatt(ids["bucket"]), "/jobs/*/result.json"),
    ]
    inputs = by_sid(default_synth, role, "ReadInputs")
    assert actions_of(inputs) == ["s3:GetObject"]
    assert inputs["Resource"] == joined(getatt(ids["bucket"]), f"/{schema.INPUT_PREFIX}*")
    all_actions = {a for s in statements(default_synth, role) for a in actions_of(s)}
    assert not {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan"} & all_actions
    assert not {a for a in all_actions if a.startswith("bedrock-agentcore:Invoke")}


def test_agent_role_invokes_the_configured_profile_and_its_model_only(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    role = runtime_role(default_synth, ids["runtime"])
    profile_arn = joined(
        "arn:",
        ref("AWS::Partition"),
        ":bedrock:",
        ref("AWS::Region"),
        ":",
        ref("AWS::AccountId"),
        f":inference-profile/{DEFAULT_MODEL_ID}",
    )
    profile = by_sid(default_synth, role, "InvokeInferenceProfile")
    assert profile["Resource"] == profile_arn
    assert sorted(actions_of(profile)) == [
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
    ]
    base = DEFAULT_MODEL_ID.split(".", 1)[1]
    model = by_sid(default_synth, role, "InvokeModelThroughProfile")
    in_any_region = joined("arn:", ref("AWS::Partition"), f":bedrock:*::foundation-model/{base}")
    regionless = joined("arn:", ref("AWS::Partition"), f":bedrock:::foundation-model/{base}")
    # A global profile names its model without a region as well.
    expected = (
        [in_any_region, regionless] if DEFAULT_MODEL_ID.startswith("global.") else (in_any_region)
    )
    assert model["Resource"] == expected
    assert model["Condition"] == {"StringEquals": {"bedrock:InferenceProfileArn": profile_arn}}


def test_agent_role_has_logs_traces_and_workload_token_per_agentcore_docs(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    role = runtime_role(default_synth, ids["runtime"])
    all_actions = {a for s in statements(default_synth, role) for a in actions_of(s)}
    assert {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "bedrock-agentcore:GetWorkloadAccessToken",
        "kms:Decrypt",
    } <= all_actions
    metrics = by_sid(default_synth, role, "CloudWatchMetrics")
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "bedrock-agentcore"}}


# --- poller ----------------------------------------------------------------------------------


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


def test_no_role_has_managed_policies(default_synth: Synth) -> None:
    for role in default_synth.template.find_resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


# --- notifications ---------------------------------------------------------------------------


def test_topics_are_kms_encrypted_and_tls_only(default_synth: Synth, ids: dict[str, str]) -> None:
    template = default_synth.template
    for topic in ("jobs_topic", "alarm_topic"):
        props = default_synth.raw["Resources"][ids[topic]]["Properties"]
        assert "KmsMasterKeyId" in props
        template.has_resource_properties(
            "AWS::SNS::TopicPolicy",
            {
                "Topics": [ref(ids[topic])],
                "PolicyDocument": Match.object_like(
                    {
                        "Statement": Match.array_with(
                            [
                                Match.object_like(
                                    {
                                        "Effect": "Deny",
                                        "Action": "sns:Publish",
                                        "Principal": "*",
                                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                    }
                                )
                            ]
                        )
                    }
                ),
            },
        )


def test_every_notification_email_is_subscribed_to_both_topics(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    subscriptions = default_synth.template.find_resources("AWS::SNS::Subscription")
    found = {
        (s["Properties"]["TopicArn"]["Ref"], s["Properties"]["Endpoint"])
        for s in subscriptions.values()
        if s["Properties"]["Protocol"] == "email"
    }
    assert found == {
        (ids[topic], email) for topic in ("jobs_topic", "alarm_topic") for email in EMAILS
    }


# --- monitoring ------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", JOB_ALARM_METRICS)
def test_job_outcome_alarm_fires_on_any_in_a_period(
    default_synth: Synth, ids: dict[str, str], metric: str
) -> None:
    default_synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AgentJobs",
            "MetricName": metric,
            "Dimensions": [{"Name": "service", "Value": "poller"}],
            "Statistic": "Sum",
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "AlarmActions": [ref(ids["alarm_topic"])],
        },
    )


def test_poller_errors_and_dead_letters_alarm_to_the_alarm_topic(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    template = default_synth.template
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [{"Name": "FunctionName", "Value": ref(ids["function"])}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "AlarmActions": [ref(ids["alarm_topic"])],
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": getatt(ids["queue"], "QueueName")}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "AlarmActions": [ref(ids["alarm_topic"])],
        },
    )


def test_dead_lettered_completion_signals_alarm_to_the_alarm_topic(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    default_synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": getatt(ids["signal_dlq"], "QueueName")}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "AlarmActions": [ref(ids["alarm_topic"])],
        },
    )


def test_every_alarm_notifies_the_alarm_topic(default_synth: Synth, ids: dict[str, str]) -> None:
    alarms = default_synth.template.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) >= 6
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [ref(ids["alarm_topic"])]


def test_dashboard_charts_the_job_flow(default_synth: Synth) -> None:
    dashboards = default_synth.template.find_resources("AWS::CloudWatch::Dashboard")
    (dashboard,) = dashboards.values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in DASHBOARD_METRICS:
        assert f'\\"{metric}\\"' in body, metric
    assert '\\"AgentJobs\\"' in body


# --- outputs ---------------------------------------------------------------------------------


def test_outputs_the_cli_reads(default_synth: Synth, ids: dict[str, str]) -> None:
    template = default_synth.template
    template.has_output("AgentRuntimeArn", {"Value": getatt(ids["runtime"], "AgentRuntimeArn")})
    template.has_output("JobsTableName", {"Value": ref(ids["table"])})
    template.has_output("ResultsBucketName", {"Value": ref(ids["bucket"])})
    template.has_output("TopicArn", {"Value": ref(ids["jobs_topic"])})
    template.has_output(
        "DashboardUrl",
        {"Value": {"Fn::Join": ["", Match.array_with(["https://", ref("AWS::Region")])]}},
    )


# --- settings reach the template -------------------------------------------------------------


def test_custom_settings_reach_schedule_timeout_lifecycle_model_and_retention(
    custom_synth: Synth,
) -> None:
    template = custom_synth.template
    template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "rate(5 minutes)",
            "Target": Match.object_like(
                {"RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 300}}
            ),
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Timeout": 295,
            "Environment": {
                "Variables": Match.object_like(
                    {"POLLER_OVERDUE_AFTER_S": "800", "POLLER_EMAIL_RESULT_PREVIEW": "1"}
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::BedrockAgentCore::Runtime",
        {
            "LifecycleConfiguration": {"IdleRuntimeSessionTimeout": 1200, "MaxLifetime": 3600},
            "EnvironmentVariables": Match.object_like(
                {"MODEL_ID": "amazon.nova-pro-v1:0", "RESULT_RETENTION_DAYS": "7"}
            ),
        },
    )
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {"LifecycleConfiguration": {"Rules": [Match.object_like({"ExpirationInDays": 7})]}},
    )
    assert not template.find_resources("AWS::SNS::Subscription")


def test_plain_foundation_model_is_granted_in_this_region_only(custom_synth: Synth) -> None:
    runtime_id = custom_synth.only("AWS::BedrockAgentCore::Runtime")
    statement = by_sid(custom_synth, runtime_role(custom_synth, runtime_id), "InvokeModel")
    assert statement["Resource"] == joined(
        "arn:",
        ref("AWS::Partition"),
        ":bedrock:",
        ref("AWS::Region"),
        "::foundation-model/amazon.nova-pro-v1:0",
    )
    assert "Condition" not in statement


def test_docker_artifact_builds_an_arm64_image_from_a_staged_context(custom_synth: Synth) -> None:
    template = custom_synth.template
    template.has_resource_properties(
        "AWS::BedrockAgentCore::Runtime",
        {"AgentRuntimeArtifact": {"ContainerConfiguration": {"ContainerUri": Match.any_value()}}},
    )
    manifest = json.loads((custom_synth.outdir / "AgentJobs.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["platform"] == "linux/arm64"
    context = custom_synth.outdir / image["source"]["directory"]
    assert (context / "Dockerfile").read_text().endswith('CMD ["python", "main.py"]\n')
    assert (context / "agent" / "main.py").is_file()
    assert (context / "agent" / "agentjobs" / "schema.py").is_file()
    assert not (context / "agent" / "agentjobs" / "cli").exists()
    requirements = (context / "requirements.txt").read_text().split()
    assert any(r.startswith("bedrock-agentcore==") for r in requirements)
    assert any(r.startswith("strands-agents==") for r in requirements)


# --- fast completion path --------------------------------------------------------------------

SIGNAL_CONSUME_ACTIONS = [
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
]


def sqs_statements(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statements(synth, role_logical_id)
        if any(a.startswith("sqs:") for a in actions_of(s))
    ]


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
