"""The first deploy in a fresh account: no account-wide prerequisite by default, alarms that
reach their topic, log delivery that matches, and data stores a failed create does not leave."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.runtime import VENDED_LOGS_PREFIX
from tests.infra.conftest import Synth

CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}


def resources(synth: Synth, resource_type: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = synth.template.find_resources(resource_type)
    return found


def walk(value: Any) -> Iterator[Any]:
    """Every nested value of a template fragment, depth first."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def log_group_arn_streams(synth: Synth) -> list[str]:
    """Resources that append ':log-stream' to a log group's Arn attribute (which ends in :*)."""
    groups = set(resources(synth, "AWS::Logs::LogGroup"))
    found = []
    for logical_id, resource in synth.raw["Resources"].items():
        for value in walk(resource):
            if not (isinstance(value, dict) and "Fn::Join" in value):
                continue
            parts = value["Fn::Join"][1]
            for before, after in itertools.pairwise(parts):
                if (
                    isinstance(before, dict)
                    and before.get("Fn::GetAtt", [None, None])[0] in groups
                    and before["Fn::GetAtt"][1] == "Arn"
                    and isinstance(after, str)
                    and after.lstrip('"').startswith(":log-stream")
                ):
                    found.append(logical_id)
    return found


# --- tracing is opt-in ---------------------------------------------------------------------


def test_default_stack_has_no_xray_delivery_and_no_resource_policies(
    default_synth: Synth,
) -> None:
    destinations = resources(default_synth, "AWS::Logs::DeliveryDestination")
    assert destinations, "application logs are still delivered"
    assert all(d["Properties"]["DeliveryDestinationType"] != "XRAY" for d in destinations.values())
    sources = resources(default_synth, "AWS::Logs::DeliverySource")
    assert [s["Properties"]["LogType"] for s in sources.values()] == ["APPLICATION_LOGS"]
    # Neither a CloudWatch Logs nor an X-Ray resource-policy slot of the region is taken.
    default_synth.template.resource_count_is("AWS::XRay::ResourcePolicy", 0)
    default_synth.template.resource_count_is("AWS::Logs::ResourcePolicy", 0)


def test_default_application_logs_go_to_a_vended_logs_group(default_synth: Synth) -> None:
    destination = next(iter(resources(default_synth, "AWS::Logs::DeliveryDestination").values()))
    group_id = destination["Properties"]["DestinationResourceArn"]["Fn::GetAtt"][0]
    group = default_synth.raw["Resources"][group_id]["Properties"]
    assert group["LogGroupName"] == f"{VENDED_LOGS_PREFIX}/AgentJobs/application"
    assert group["RetentionInDays"] == 90


def test_tracing_true_adds_one_xray_delivery_with_its_resource_policy(
    tracing_synth: Synth,
) -> None:
    template = tracing_synth.template
    xray = resources(tracing_synth, "AWS::Logs::DeliveryDestination")
    xray_ids = [k for k, v in xray.items() if v["Properties"]["DeliveryDestinationType"] == "XRAY"]
    assert len(xray_ids) == 1
    template.has_resource_properties(
        "AWS::Logs::Delivery",
        {"DeliveryDestinationArn": {"Fn::GetAtt": [xray_ids[0], "Arn"]}},
    )
    template.has_resource_properties(
        "AWS::Logs::DeliverySource",
        {
            "LogType": "TRACES",
            "ResourceArn": {
                "Fn::GetAtt": [
                    tracing_synth.only("AWS::BedrockAgentCore::Runtime"),
                    "AgentRuntimeArn",
                ]
            },
        },
    )
    template.resource_count_is("AWS::XRay::ResourcePolicy", 1)


# --- log delivery names streams that exist -------------------------------------------------


@pytest.mark.parametrize("synth_name", ["default_synth", "tracing_synth", "custom_synth"])
def test_no_statement_appends_log_stream_to_a_log_group_arn(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    assert log_group_arn_streams(synth) == []


def test_delivery_policy_names_the_application_log_streams_by_group_name(
    tracing_synth: Synth,
) -> None:
    policy = next(iter(resources(tracing_synth, "AWS::Logs::ResourcePolicy").values()))
    parts = policy["Properties"]["PolicyDocument"]["Fn::Join"][1]
    destination = next(
        d
        for d in resources(tracing_synth, "AWS::Logs::DeliveryDestination").values()
        if d["Properties"]["DeliveryDestinationType"] == "CWL"
    )
    group_id = destination["Properties"]["DestinationResourceArn"]["Fn::GetAtt"][0]
    at = parts.index({"Ref": group_id})
    assert parts[at - 1].endswith(":log-group:")
    assert parts[at + 1].startswith(":log-stream:*")
    document = "".join(p if isinstance(p, str) else "X" for p in parts)
    statement = json.loads(document)["Statement"]
    assert [s["Principal"] for s in statement] == [{"Service": "delivery.logs.amazonaws.com"}]
    assert statement[0]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert set(statement[0]["Condition"]) == {"StringEquals", "ArnLike"}


# --- alarms reach the alarm topic ----------------------------------------------------------


def alarm_arn(synth: Synth, alarm: dict[str, Any]) -> dict[str, Any]:
    name = alarm["Properties"]["AlarmName"]
    assert isinstance(name, str) and name.startswith("AgentJobs-")
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":cloudwatch:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":alarm:{name}",
            ],
        ]
    }


def cloudwatch_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for s in document["Statement"]
        if s.get("Principal") == CLOUDWATCH and s.get("Effect") == "Allow"
    ]


def test_every_alarm_topic_lets_cloudwatch_publish_for_exactly_these_alarms(
    default_synth: Synth,
) -> None:
    alarms = resources(default_synth, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 11
    arns = [alarm_arn(default_synth, a) for a in alarms.values()]
    topics = {json.dumps(t) for a in alarms.values() for t in a["Properties"]["AlarmActions"]}
    assert topics
    for topic in map(json.loads, topics):
        policies = [
            p
            for p in resources(default_synth, "AWS::SNS::TopicPolicy").values()
            if topic in p["Properties"]["Topics"]
        ]
        assert len(policies) == 1
        document = policies[0]["Properties"]["PolicyDocument"]
        # The TLS-only Deny stays beside the Allow.
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in document["Statement"]
        )
        (allow,) = cloudwatch_statements(document)
        assert allow["Action"] == "sns:Publish"
        assert allow["Resource"] == topic
        assert allow["Condition"]["StringEquals"] == {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
        }
        assert sorted(map(json.dumps, allow["Condition"]["ArnLike"]["aws:SourceArn"])) == sorted(
            map(json.dumps, arns)
        )


def test_alarm_topic_key_lets_cloudwatch_use_it_for_these_alarms_only(
    default_synth: Synth,
) -> None:
    alarms = resources(default_synth, "AWS::CloudWatch::Alarm")
    arns = sorted(json.dumps(alarm_arn(default_synth, a)) for a in alarms.values())
    topic_id = next(iter(alarms.values()))["Properties"]["AlarmActions"][0]["Ref"]
    key_id = default_synth.raw["Resources"][topic_id]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][
        0
    ]
    key = default_synth.raw["Resources"][key_id]["Properties"]
    (grant,) = cloudwatch_statements(key["KeyPolicy"])
    assert sorted(grant["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert grant["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert sorted(map(json.dumps, grant["Condition"]["ArnLike"]["aws:SourceArn"])) == arns


def test_jobs_topic_gives_cloudwatch_nothing(default_synth: Synth) -> None:
    jobs = default_synth.only("AWS::SNS::Topic", {"DisplayName": "agentjobs: finished jobs"})
    for policy in resources(default_synth, "AWS::SNS::TopicPolicy").values():
        if {"Ref": jobs} in policy["Properties"]["Topics"]:
            assert cloudwatch_statements(policy["Properties"]["PolicyDocument"]) == []


# --- a failed first create leaves nothing; a delete keeps the data --------------------------


@pytest.mark.parametrize("resource_type", ["AWS::DynamoDB::Table", "AWS::S3::Bucket"])
def test_every_data_store_is_retained_except_on_create(
    default_synth: Synth, resource_type: str
) -> None:
    found = resources(default_synth, resource_type)
    assert found
    for resource in found.values():
        assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
        assert resource["UpdateReplacePolicy"] == "Retain"


def test_the_key_guarding_retained_data_is_retained_except_on_create(
    default_synth: Synth,
) -> None:
    default_synth.template.has_resource(
        "AWS::KMS::Key",
        {
            "Properties": Match.object_like({"Description": "agentjobs: job records and results"}),
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_no_data_store_blocks_a_rollback(default_synth: Synth) -> None:
    for table in resources(default_synth, "AWS::DynamoDB::Table").values():
        assert "DeletionProtectionEnabled" not in table["Properties"]
