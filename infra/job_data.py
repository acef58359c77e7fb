"""The job data: the jobs and history tables and the results bucket, laid out by
agentjobs.schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from agentjobs import schema

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
ACCESS_LOG_RETENTION = Duration.days(365)
DATA_REMOVAL = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
"""CloudFormation's RetainExceptOnCreate: a stack that ran keeps its data when deleted or
replaced, and a failed first create rolls back to nothing, so a retry does not collide with
a retained table, bucket or key from the attempt before."""
KEY_USE_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
"""What a reader-writer of the job data calls on its key: Decrypt to read items and objects,
GenerateDataKey to write them (SSE-KMS and DynamoDB). No Encrypt or ReEncrypt: nothing here
encrypts with the key directly or moves data between keys."""


@dataclass(frozen=True)
class JobDataProps:
    """How long results are kept."""

    result_retention_days: int


class JobData(Construct):
    """Jobs table, history table and results bucket, all encrypted with one customer-managed
    key, all kept when a stack that ran is deleted (they hold the users' jobs and results),
    none left behind by a failed first create."""

    def __init__(self, scope: Construct, construct_id: str, *, props: JobDataProps) -> None:
        super().__init__(scope, construct_id)

        # One key for the job data wherever it lives (inline in the record or in S3): one
        # grant lets a role read a result whichever way it was stored, and disabling the key
        # locks all of it at once. Retained with the data, or the data becomes unreadable.
        self.key = kms.Key(
            self,
            "Key",
            description="agentjobs: job records and results",
            enable_key_rotation=True,
            removal_policy=DATA_REMOVAL,
            # Only a failed first create deletes the key (the data it guards goes with it);
            # the shortest window then frees the account of it soonest.
            pending_window=Duration.days(7),
        )
        self.table = self._table("Table", schema.table_definition())
        # A job's history: its events under its id, kept, encrypted and expired like its record.
        self.events_table = self._table("EventsTable", schema.events_table_definition())
        self.bucket = self._bucket(props.result_retention_days)

    def _table(self, construct_id: str, definition: dict[str, Any]) -> dynamodb.Table:
        """A table laid out by `definition` (CreateTable's shape, from agentjobs.schema),
        encrypted with the job data key, with PITR, TTL and the data's retention."""
        types = {
            a["AttributeName"]: _ATTRIBUTE_TYPES[a["AttributeType"]]
            for a in definition["AttributeDefinitions"]
        }
        keys = {k["KeyType"]: k["AttributeName"] for k in definition["KeySchema"]}
        table = dynamodb.Table(
            self,
            construct_id,
            partition_key=dynamodb.Attribute(name=keys["HASH"], type=types[keys["HASH"]]),
            sort_key=(
                dynamodb.Attribute(name=keys["RANGE"], type=types[keys["RANGE"]])
                if "RANGE" in keys
                else None
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=schema.TTL_ATTRIBUTE,
            # No deletion protection: it makes DeleteTable fail, so a failed first create
            # could not roll back and would leave the table behind. RetainExceptOnCreate
            # keeps it on stack deletion instead, and PITR keeps its backups.
            removal_policy=DATA_REMOVAL,
        )
        for index in definition.get("GlobalSecondaryIndexes", ()):
            table.add_global_secondary_index(**_index_options(index, types))
        return table

    def _bucket(self, retention_days: int) -> s3.Bucket:
        # Server access logs cannot be delivered to an SSE-KMS bucket, so their bucket uses
        # S3-managed keys; it holds request metadata only, never results.
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=ACCESS_LOG_RETENTION)],
            removal_policy=DATA_REMOVAL,
        )
        Validations.of(access_logs).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This is the results bucket's access-log target; logging it into "
                "itself would log its own log deliveries forever.",
            )
        )
        return s3.Bucket(
            self,
            "Results",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            # Bucket keys cut KMS requests (and their cost) for many small result objects.
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="results/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireResults",
                    expiration=Duration.days(retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=DATA_REMOVAL,
        )

    @property
    def results_prefix(self) -> str:
        """Where the agent writes: every result and outcome key starts with this."""
        return schema.RESULT_PREFIX

    @property
    def input_prefix(self) -> str:
        """Where callers upload job input; the only objects an agent reads for a caller."""
        return schema.INPUT_PREFIX

    def grant_append_events(self, grantee: iam.IGrantable) -> None:
        """Let `grantee` add events to job histories: conditional puts, nothing read or
        changed (the history is append-only)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AppendJobHistory",
                actions=["dynamodb:PutItem"],
                resources=[self.events_table.table_arn],
            )
        )

    def result_objects(self, name: str = "*") -> str:
        """ARN pattern of `name` in every job's folder under the results prefix."""
        return self.bucket.arn_for_objects(f"{schema.RESULT_PREFIX}*/{name}")

    def grant_key_use(self, grantee: iam.IGrantable) -> None:
        """Let `grantee` read and write the job data its key guards, nothing more."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="UseJobDataKey", actions=list(KEY_USE_ACTIONS), resources=[self.key.key_arn]
            )
        )

    def attention_index_arn(self) -> str:
        """The ARN of the index the poller queries for jobs in flight."""
        return f"{self.table.table_arn}/index/{schema.ATTENTION_INDEX}"


def _index_options(
    index: dict[str, Any], types: dict[str, dynamodb.AttributeType]
) -> dict[str, Any]:
    keys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
    projection = index["Projection"]["ProjectionType"]
    options: dict[str, Any] = {
        "index_name": index["IndexName"],
        "partition_key": dynamodb.Attribute(name=keys["HASH"], type=types[keys["HASH"]]),
        "projection_type": dynamodb.ProjectionType[projection],
    }
    if "RANGE" in keys:
        options["sort_key"] = dynamodb.Attribute(name=keys["RANGE"], type=types[keys["RANGE"]])
    if projection == "INCLUDE":
        options["non_key_attributes"] = index["Projection"]["NonKeyAttributes"]
    return options
