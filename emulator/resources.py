"""Create the job and history tables, results bucket, topic and inbox queue on a local AWS
endpoint (moto)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agentjobs import schema


@dataclass(frozen=True)
class LocalResources:
    """Names and addresses of the resources the local stack and the tests use."""

    table: str
    bucket: str
    topic_arn: str
    inbox_queue_url: str
    completion_queue_url: str = ""
    """The fast completion path's queue. Not in env(): who gets COMPLETION_QUEUE_URL
    decides whether agents signal (the local stack, when LOCAL_FASTPATH=1)."""
    events_table: str = ""
    """The history table (a job's events); empty: none, and nobody keeps a history."""

    def env(self) -> dict[str, str]:
        """The environment variables the agent, poller and CLI read these from."""
        env = {
            "JOBS_TABLE": self.table,
            "RESULTS_BUCKET": self.bucket,
            "TOPIC_ARN": self.topic_arn,
            "INBOX_QUEUE_URL": self.inbox_queue_url,
        }
        if self.events_table:
            env["EVENTS_TABLE"] = self.events_table
        return env


def create_resources(session: Any, name: str) -> LocalResources:
    """Create the job and history tables, a bucket, topic and SQS inbox subscribed to the
    topic (SNS envelope, raw delivery off), all named after `name`, from the definitions the
    CDK stack uses."""
    ddb = session.client("dynamodb")
    tables = {
        f"{name}-jobs": schema.table_definition(),
        f"{name}-events": schema.events_table_definition(),
    }
    for table_name, definition in tables.items():
        ddb.create_table(TableName=table_name, **definition)
        ddb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": schema.TTL_ATTRIBUTE},
        )
    s3 = session.client("s3")
    bucket = f"{name}-results"
    if session.region_name == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": session.region_name},
        )
    sns = session.client("sns")
    topic_arn = sns.create_topic(Name=f"{name}-notifications")["TopicArn"]
    sqs = session.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sns.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": queue_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                        }
                    ],
                }
            )
        },
    )
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    completion_url = sqs.create_queue(QueueName=f"{name}-completions")["QueueUrl"]
    return LocalResources(
        table=f"{name}-jobs",
        bucket=bucket,
        topic_arn=topic_arn,
        inbox_queue_url=queue_url,
        completion_queue_url=completion_url,
        events_table=f"{name}-events",
    )
