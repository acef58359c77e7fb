"""Reading and writing job records (DynamoDB) and results and outcomes (S3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentjobs import schema
from agentjobs.record import ATTENTION_PENDING, JobRecord, from_item, to_item


class StoreError(Exception):
    """A store call failed; the message is safe to show a caller (no internal detail)."""


def _is_conditional_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class JobStore:
    """Job records in the DynamoDB table named by JOBS_TABLE."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = dynamodb
        self.table_name = table_name

    def create_running(self, record: JobRecord) -> tuple[JobRecord, bool]:
        """Write a new RUNNING record unless the job id exists; return the stored record
        and whether this call created it (False: the same client token was seen before)."""
        item = to_item(record)
        item[schema.ATTENTION_KEY] = {"S": ATTENTION_PENDING}
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise StoreError("the job table refused the new job record") from exc
            existing = self.get(record.job_id)
            if existing is None:
                raise StoreError("the job record exists but could not be read back") from exc
            return existing, False
        except BotoCoreError as exc:
            raise StoreError("the job table could not be reached") from exc
        return record, True

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record, read consistently; None when there is none."""
        try:
            answer = self._ddb.get_item(
                TableName=self.table_name,
                Key={schema.PARTITION_KEY: {"S": job_id}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("the job table could not be read") from exc
        item = answer.get("Item")
        return from_item(item) if item else None

    def jobs_needing_attention(self, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Raw items of the jobs still in flight, oldest first, through the sparse index.

        Items are yielded raw so that one malformed record can be reported by its caller
        without stopping the iteration; index reads may be stale, re-read before acting.
        """
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": schema.ATTENTION_INDEX,
                "KeyConditionExpression": "#a = :pending",
                "ExpressionAttributeNames": {"#a": schema.ATTENTION_KEY},
                "ExpressionAttributeValues": {":pending": {"S": ATTENTION_PENDING}},
                "Limit": page_size,
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            try:
                page = self._ddb.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StoreError("the job table's attention index could not be read") from exc
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return


class ResultStore:
    """Large results and durable outcomes in the S3 bucket named by RESULTS_BUCKET."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def uri(self, key: str) -> str:
        """The s3:// URI of a key in this bucket."""
        return f"s3://{self.bucket}/{key}"

    def put_result(self, job_id: str, encoded: bytes) -> str:
        """Store a large result's JSON bytes; return its s3:// URI."""
        key = schema.result_key(job_id)
        self._put(key, encoded)
        return self.uri(key)

    def put_outcome(self, outcome: dict[str, Any]) -> None:
        """Store a finished job's outcome (its `result` answer) where the poller can find it."""
        self._put(
            schema.outcome_key(outcome["job_id"]),
            json.dumps(outcome, separators=(",", ":"), ensure_ascii=False).encode(),
        )

    def get_outcome(self, job_id: str) -> dict[str, Any] | None:
        """A job's stored outcome; None when the agent never stored one."""
        body = self._get(schema.outcome_key(job_id))
        if body is None:
            return None
        value = json.loads(body)
        return value if isinstance(value, dict) else None

    def read_uri(self, uri: str) -> bytes | None:
        """The bytes behind an s3:// URI in this bucket; None when the object is missing."""
        prefix = f"s3://{self.bucket}/"
        if not uri.startswith(prefix):
            raise StoreError(f"{uri} is not in the results bucket {self.bucket}")
        return self._get(uri[len(prefix) :])

    def _put(self, key: str, body: bytes) -> None:
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("the results bucket refused the write") from exc

    def _get(self, key: str) -> bytes | None:
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise StoreError("the results bucket could not be read") from exc
        except BotoCoreError as exc:
            raise StoreError("the results bucket could not be reached") from exc
        body: bytes = answer["Body"].read()
        return body
