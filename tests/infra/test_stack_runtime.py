"""The agent runtime in the template: its code, lifecycle, environment and role."""

from __future__ import annotations

from aws_cdk.assertions import Match

from agentjobs import schema
from agentjobs.model_ids import DEFAULT_MODEL_ID
from tests.infra.conftest import Synth
from tests.infra.template import (
    actions_of,
    by_sid,
    getatt,
    joined,
    ref,
    runtime_role,
    statements,
)


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
                "EVENTS_TABLE": ref(ids["events_table"]),
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
