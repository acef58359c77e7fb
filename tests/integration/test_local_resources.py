"""The local resources are created from the shared schema and an SNS publish reaches the inbox."""

from __future__ import annotations

import json

from agentjobs import schema
from emulator.resources import LocalResources
from testbed.aws import MotoEndpoint


def test_table_has_the_shared_indexes_and_ttl(
    moto: MotoEndpoint, resources: LocalResources
) -> None:
    ddb = moto.client("dynamodb")
    table = ddb.describe_table(TableName=resources.table)["Table"]
    indexes = {i["IndexName"] for i in table["GlobalSecondaryIndexes"]}
    assert indexes == {schema.ATTENTION_INDEX, schema.STATUS_INDEX, schema.SESSION_INDEX}
    ttl = ddb.describe_time_to_live(TableName=resources.table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == schema.TTL_ATTRIBUTE


def test_topic_publish_arrives_in_inbox_with_sns_envelope(
    moto: MotoEndpoint, resources: LocalResources
) -> None:
    moto.client("sns").publish(TopicArn=resources.topic_arn, Message="hello")
    messages = moto.client("sqs").receive_message(
        QueueUrl=resources.inbox_queue_url, WaitTimeSeconds=2
    )["Messages"]
    envelope = json.loads(messages[0]["Body"])
    assert envelope["Type"] == "Notification"
    assert envelope["Message"] == "hello"
