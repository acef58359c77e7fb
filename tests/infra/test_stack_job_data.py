"""The job data in the template: table, keys and results bucket."""

from __future__ import annotations

from aws_cdk.assertions import Match

from agentjobs import schema
from tests.infra.conftest import Synth
from tests.infra.template import (
    getatt,
    ref,
)


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
