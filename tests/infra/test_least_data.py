"""Least data: each role may touch exactly the objects and keys it uses, through actions
named in full, whatever artifact or option the stack is built with."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agentjobs import schema
from tests.infra.conftest import MARKETPLACE_PRODUCT_ID, Synth

UNSCOPABLE_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "cloudwatch:PutMetricData",
    "ecr:GetAuthorizationToken",
    "aws-marketplace:ViewSubscriptions",
}
"""Actions whose services offer no resource-level scoping: the only ones allowed on "*"
without a condition that narrows them."""
KEY_ACTIONS = {"kms:Decrypt", "kms:GenerateDataKey"}
SYNTHS = ["default_synth", "custom_synth", "tracing_synth"]


def policy_statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    """(role logical id, statement) for every inline policy statement in the template."""
    found = []
    for policy in synth.template.find_resources("AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                found.append((role["Ref"], statement))
    return found


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def text_of(resource: Any) -> str:
    """A resource as one string, tokens rendered as <LogicalId>, for pattern checks."""
    if isinstance(resource, str):
        return resource
    if "Fn::Join" in resource:
        return "".join(text_of(p) for p in resource["Fn::Join"][1])
    if "Fn::GetAtt" in resource:
        return f"<{resource['Fn::GetAtt'][0]}.{resource['Fn::GetAtt'][1]}>"
    if "Ref" in resource:
        return f"<{resource['Ref']}>"
    if "Fn::Sub" in resource:
        return str(resource["Fn::Sub"])
    raise AssertionError(f"unexpected resource form {resource}")


def agent_role(synth: Synth) -> str:
    runtime = synth.raw["Resources"][synth.only("AWS::BedrockAgentCore::Runtime")]
    return str(runtime["Properties"]["RoleArn"]["Fn::GetAtt"][0])


def poller_role(synth: Synth) -> str:
    function = synth.raw["Resources"][synth.only("AWS::Lambda::Function")]
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


def results_bucket(synth: Synth) -> str:
    runtime = synth.raw["Resources"][synth.only("AWS::BedrockAgentCore::Runtime")]
    return str(runtime["Properties"]["EnvironmentVariables"]["RESULTS_BUCKET"]["Ref"])


def s3_object_resources(synth: Synth, role: str, action_prefix: str) -> set[str]:
    return {
        text_of(resource)
        for owner, statement in policy_statements(synth)
        if owner == role and any(a.startswith(action_prefix) for a in listed(statement["Action"]))
        for resource in listed(statement["Resource"])
    }


@pytest.fixture(params=SYNTHS)
def synth(request: pytest.FixtureRequest) -> Synth:
    found: Synth = request.getfixturevalue(request.param)
    return found


def test_no_action_is_a_wildcard(synth: Synth) -> None:
    wild = [
        (role, action)
        for role, statement in policy_statements(synth)
        for action in listed(statement["Action"])
        if "*" in action
    ]
    assert wild == []


def test_only_unscopable_actions_apply_to_every_resource(synth: Synth) -> None:
    for role, statement in policy_statements(synth):
        if "*" not in listed(statement["Resource"]):
            continue
        actions = set(listed(statement["Action"]))
        narrowed = actions == {"aws-marketplace:Subscribe"} and "Condition" in statement
        assert narrowed or actions <= UNSCOPABLE_ACTIONS, (role, actions)


def test_kms_actions_are_decrypt_and_generate_data_key_only(synth: Synth) -> None:
    used = {
        action
        for _, statement in policy_statements(synth)
        for action in listed(statement["Action"])
        if action.startswith("kms:")
    }
    assert used == KEY_ACTIONS


def test_no_role_may_read_a_whole_bucket(synth: Synth) -> None:
    for role, statement in policy_statements(synth):
        if not any(a.startswith("s3:Get") for a in listed(statement["Action"])):
            continue
        for resource in map(text_of, listed(statement["Resource"])):
            # A bucket's ARN and "/*": every object in it (the L2 asset grant's shape).
            assert not re.fullmatch(r"[^/]+/\*", resource), (role, resource)


def test_agent_reads_only_inputs_outcomes_durable_state_and_its_own_code_object(
    default_synth: Synth,
) -> None:
    bucket = results_bucket(default_synth)
    reads = s3_object_resources(default_synth, agent_role(default_synth), "s3:Get")
    code = next(r for r in reads if "cdk-" in r)
    # Outcomes: a re-invoked session answers a job that ended before the poller collected it.
    # A resumable job's input and checkpoint: a fresh session resumes the job from them.
    assert reads == {
        f"<{bucket}.Arn>/{schema.INPUT_PREFIX}*",
        f"<{bucket}.Arn>/{schema.outcome_key('*')}",
        f"<{bucket}.Arn>/{schema.input_key('*')}",
        f"<{bucket}.Arn>/{schema.checkpoint_key('*')}",
        code,
    }
    # The code object is one key in the bootstrap bucket, named by its content hash.
    key = code.rsplit("/", 1)[1]
    assert key.endswith(".zip") and "*" not in key
    runtime = default_synth.raw["Resources"][default_synth.only("AWS::BedrockAgentCore::Runtime")]
    assert (
        runtime["Properties"]["AgentRuntimeArtifact"]["CodeConfiguration"]["Code"]["S3"]["Prefix"]
        == key
    )


def test_agent_writes_only_outcomes_results_and_durable_state(default_synth: Synth) -> None:
    bucket = results_bucket(default_synth)
    writes = s3_object_resources(default_synth, agent_role(default_synth), "s3:Put")
    assert writes == {
        f"<{bucket}.Arn>/{schema.outcome_key('*')}",
        f"<{bucket}.Arn>/{schema.result_key('*')}",
        f"<{bucket}.Arn>/{schema.input_key('*')}",
        f"<{bucket}.Arn>/{schema.checkpoint_key('*')}",
    }


def test_agent_lists_only_the_results_prefix(synth: Synth) -> None:
    # ListBucket makes S3 answer a missing outcome NoSuchKey rather than AccessDenied; the
    # prefix condition keeps inputs (other callers' data) out of any listing.
    role = agent_role(synth)
    lists = [
        s
        for owner, s in policy_statements(synth)
        if owner == role and any(a.startswith("s3:List") for a in listed(s["Action"]))
    ]
    assert [listed(s["Action"]) for s in lists] == [["s3:ListBucket"]]
    assert lists[0]["Condition"] == {"StringLike": {"s3:prefix": schema.RESULT_PREFIX + "*"}}


def test_docker_agent_pulls_from_the_image_repository_only(custom_synth: Synth) -> None:
    role = agent_role(custom_synth)
    ecr = [
        s
        for owner, s in policy_statements(custom_synth)
        if owner == role and any(a.startswith("ecr:") for a in listed(s["Action"]))
    ]
    scoped = [s for s in ecr if s["Resource"] != "*"]
    assert len(scoped) == 1
    assert sorted(listed(scoped[0]["Action"])) == ["ecr:BatchCheckLayerAvailability",
                                                   "ecr:BatchGetImage",
                                                   "ecr:GetDownloadUrlForLayer"]  # fmt: skip
    assert "repository/" in text_of(scoped[0]["Resource"])
    bucket = results_bucket(custom_synth)
    assert not s3_object_resources(custom_synth, role, "s3:Get") - {
        f"<{bucket}.Arn>/{schema.INPUT_PREFIX}*",
        f"<{bucket}.Arn>/{schema.outcome_key('*')}",
        f"<{bucket}.Arn>/{schema.input_key('*')}",
        f"<{bucket}.Arn>/{schema.checkpoint_key('*')}",
    }


def test_poller_reads_outcomes_results_and_checkpoints_and_writes_results_only(
    default_synth: Synth,
) -> None:
    bucket = results_bucket(default_synth)
    role = poller_role(default_synth)
    assert s3_object_resources(default_synth, role, "s3:Get") == {
        f"<{bucket}.Arn>/{schema.outcome_key('*')}",
        f"<{bucket}.Arn>/{schema.result_key('*')}",
        f"<{bucket}.Arn>/{schema.checkpoint_key('*')}",
    }
    assert s3_object_resources(default_synth, role, "s3:Put") == {
        f"<{bucket}.Arn>/{schema.result_key('*')}"
    }


def test_marketplace_subscription_is_for_the_configured_product_only(
    default_synth: Synth, tracing_synth: Synth
) -> None:
    def marketplace(synth: Synth) -> list[dict[str, Any]]:
        return [
            s
            for owner, s in policy_statements(synth)
            if owner == agent_role(synth)
            and any(a.startswith("aws-marketplace:") for a in listed(s["Action"]))
        ]

    assert marketplace(default_synth) == []
    found = {json.dumps(listed(s["Action"])): s for s in marketplace(tracing_synth)}
    assert set(found) == {
        json.dumps(["aws-marketplace:Subscribe"]),
        json.dumps(["aws-marketplace:ViewSubscriptions"]),
    }
    subscribe = found[json.dumps(["aws-marketplace:Subscribe"])]
    assert subscribe["Condition"] == {
        "ForAnyValue:StringEquals": {"aws-marketplace:ProductId": [MARKETPLACE_PRODUCT_ID]}
    }
