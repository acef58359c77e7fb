"""The history table in the template: laid out by the shared definition, kept like the job
table, named to the agent and the poller, appended to (never read or changed) by both; and
the S3 rights of durable jobs (input and checkpoint objects)."""

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
    runtime_role,
    statements,
)


def test_history_table_is_derived_from_the_shared_definition(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    definition = schema.events_table_definition()
    table = default_synth.raw["Resources"][ids["events_table"]]["Properties"]
    assert table["KeySchema"] == definition["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        definition["AttributeDefinitions"], key=str
    )
    assert table["BillingMode"] == definition["BillingMode"]
    assert "GlobalSecondaryIndexes" not in table
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": schema.TTL_ATTRIBUTE,
        "Enabled": True,
    }


def test_history_table_is_encrypted_with_the_job_data_key_backed_up_and_retained(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    resource = default_synth.raw["Resources"][ids["events_table"]]
    assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
    assert resource["UpdateReplacePolicy"] == "Retain"
    props = resource["Properties"]
    assert props["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": getatt(ids["store_key"]),
    }
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "DeletionProtectionEnabled" not in props


def test_history_table_is_named_to_the_agent_the_poller_and_the_cli(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    template = default_synth.template
    events = ref(ids["events_table"])
    template.has_output("EventsTableName", {"Value": events})
    template.has_resource_properties(
        "AWS::BedrockAgentCore::Runtime",
        {"EnvironmentVariables": Match.object_like({"EVENTS_TABLE": events})},
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"EVENTS_TABLE": events})}},
    )


def test_agent_and_poller_only_append_to_the_history(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    for role in (runtime_role(default_synth, ids["runtime"]), ids["poller_role"]):
        statement = by_sid(default_synth, role, "AppendJobHistory")
        assert actions_of(statement) == ["dynamodb:PutItem"]
        assert statement["Resource"] == getatt(ids["events_table"])
        on_history = [
            s for s in statements(default_synth, role) if ids["events_table"] in json.dumps(s)
        ]
        assert on_history == [statement]


def test_agent_stores_and_reads_a_resumable_jobs_input_and_checkpoint_only(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    role = runtime_role(default_synth, ids["runtime"])
    durable = by_sid(default_synth, role, "DurableJobState")
    assert sorted(actions_of(durable)) == ["s3:GetObject", "s3:PutObject"]
    assert durable["Resource"] == [
        joined(getatt(ids["bucket"]), f"/{schema.input_key('*')}"),
        joined(getatt(ids["bucket"]), f"/{schema.checkpoint_key('*')}"),
    ]
    removal = by_sid(default_synth, role, "RemoveUnrecordedInput")
    assert actions_of(removal) == ["s3:DeleteObject"]
    assert removal["Resource"] == joined(getatt(ids["bucket"]), f"/{schema.input_key('*')}")
    deletes = [s for s in statements(default_synth, role) if "s3:DeleteObject" in actions_of(s)]
    assert deletes == [removal]
    # The agent creates records and never changes one: the poller owns every later write.
    actions = {a for s in statements(default_synth, role) for a in actions_of(s)}
    assert "dynamodb:UpdateItem" not in actions


def test_poller_reads_checkpoints_and_never_writes_them(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    role = ids["poller_role"]
    reads = by_sid(default_synth, role, "ReadCheckpoints")
    assert actions_of(reads) == ["s3:GetObject"]
    assert reads["Resource"] == joined(getatt(ids["bucket"]), f"/{schema.checkpoint_key('*')}")
    checkpoint = joined(getatt(ids["bucket"]), f"/{schema.checkpoint_key('*')}")
    inputs = joined(getatt(ids["bucket"]), f"/{schema.input_key('*')}")
    for statement in statements(default_synth, role):
        resources = _listed(statement["Resource"])
        if checkpoint in resources or inputs in resources:
            assert statement == reads


def test_poller_is_told_the_runtimes_session_lifetime(
    default_synth: Synth, custom_synth: Synth
) -> None:
    for synth, lifetime in ((default_synth, "28800"), (custom_synth, "3600")):
        synth.template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Environment": {
                    "Variables": Match.object_like({"POLLER_SESSION_MAX_LIFETIME_S": lifetime})
                }
            },
        )
        synth.template.has_resource_properties(
            "AWS::BedrockAgentCore::Runtime",
            {"LifecycleConfiguration": Match.object_like({"MaxLifetime": int(lifetime)})},
        )
    # The agent has no use for it: its process is the session that ends.
    runtime = default_synth.raw["Resources"][default_synth.only("AWS::BedrockAgentCore::Runtime")]
    assert "POLLER_SESSION_MAX_LIFETIME_S" not in runtime["Properties"]["EnvironmentVariables"]


def _listed(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]
