"""The stack as a whole: no managed policies, the outputs the CLI reads, settings reaching it."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from tests.infra.conftest import Synth
from tests.infra.template import (
    by_sid,
    getatt,
    joined,
    ref,
    runtime_role,
)


def test_no_role_has_managed_policies(default_synth: Synth) -> None:
    for role in default_synth.template.find_resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_outputs_the_cli_reads(default_synth: Synth, ids: dict[str, str]) -> None:
    template = default_synth.template
    template.has_output("AgentRuntimeArn", {"Value": getatt(ids["runtime"], "AgentRuntimeArn")})
    template.has_output("JobsTableName", {"Value": ref(ids["table"])})
    template.has_output("EventsTableName", {"Value": ref(ids["events_table"])})
    template.has_output("ResultsBucketName", {"Value": ref(ids["bucket"])})
    template.has_output("TopicArn", {"Value": ref(ids["jobs_topic"])})
    template.has_output(
        "DashboardUrl",
        {"Value": {"Fn::Join": ["", Match.array_with(["https://", ref("AWS::Region")])]}},
    )


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
