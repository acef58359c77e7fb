"""Reading and writing job records (DynamoDB) and results and outcomes (S3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentjobs import schema
from agentjobs.record import (
    ATTENTION_PENDING,
    JobRecord,
    StoredJob,
    from_item,
    read_item,
    to_item,
)

# DynamoDB's answers to a request it refuses for what it holds: an item over 400 KB
# ("Item size has exceeded the maximum allowed size") or a value it does not accept. Sending
# the same write again can never succeed, so these are not retried like throttling or 5xx.
_REFUSED_CODES = frozenset({"ValidationException", "SerializationException"})

# S3 conditional writes (If-None-Match: *): 412 when the key exists, 409 when a concurrent
# write of the key raced this one (retry); see the S3 user guide, "conditional writes".
_EXISTS_CODES = frozenset({"PreconditionFailed", "412"})

UNREACHABLE = "the job table could not be reached"


class StoreError(Exception):
    """A store call failed; the message is safe to show a caller (no internal detail)."""


class TransitionConflictError(StoreError):
    """A conditional write found the record changed: another poller took the job or moved it."""


class RecordRefusedError(StoreError):
    """The job table refused a write for its content (the item would be too large, or a value
    is not accepted): the same write can never succeed."""


class ResultConflictError(StoreError):
    """A different result is already stored at the job's result key; it is kept."""


@contextmanager
def table_errors(
    failed: str, *, conflict: str | None = None, unreachable: str = UNREACHABLE
) -> Iterator[None]:
    """Translate the errors of one DynamoDB call into StoreErrors whose messages are safe to
    show: `failed` for a refusal, `unreachable` when the table could not be reached. A
    conditional write passes `conflict`: its failed condition becomes a TransitionConflictError
    saying so, and a refusal of its content a RecordRefusedError."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if conflict is not None and code == "ConditionalCheckFailedException":
            raise TransitionConflictError(conflict) from exc
        if conflict is not None and code in _REFUSED_CODES:
            raise RecordRefusedError(
                f"the job table refused the update ({code}): the record would be too large "
                "or holds a value it does not accept"
            ) from exc
        raise StoreError(failed) from exc
    except BotoCoreError as exc:
        raise StoreError(unreachable) from exc


def error_code(exc: ClientError) -> str:
    """The error code of an AWS service's refusal."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def query_items(
    dynamodb: Any, request: dict[str, Any], *, failed: str, max_items: int | None = None
) -> Iterator[dict[str, Any]]:
    """The raw items a DynamoDB Query answers, page after page, up to `max_items`; a page
    that cannot be read raises StoreError saying `failed`."""
    start: dict[str, Any] | None = None
    given = 0
    while True:
        page_request = {**request, **({"ExclusiveStartKey": start} if start else {})}
        with table_errors(failed, unreachable=failed):
            page = dynamodb.query(**page_request)
        for item in page.get("Items", []):
            if max_items is not None and given >= max_items:
                return
            given += 1
            yield item
        start = page.get("LastEvaluatedKey")
        if not start or (max_items is not None and given >= max_items):
            return


class JobStore:
    """Job records in the DynamoDB table named by JOBS_TABLE."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table_name = table_name

    def key(self, job_id: str) -> dict[str, Any]:
        """The table key of a job."""
        return {schema.PARTITION_KEY: {"S": job_id}}

    def create_running(self, record: JobRecord) -> tuple[JobRecord, bool]:
        """Write a new RUNNING record unless the job id exists; return the stored record
        and whether this call created it (False: the same client token was seen before)."""
        item = to_item(record)
        item[schema.ATTENTION_KEY] = {"S": ATTENTION_PENDING}
        try:
            with table_errors("the job table refused the new job record", conflict="exists"):
                self.dynamodb.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression="attribute_not_exists(job_id)",
                )
        except RecordRefusedError as exc:
            # A caller is told plainly, as for any other refusal of its new job.
            raise StoreError("the job table refused the new job record") from exc
        except TransitionConflictError as exc:
            existing = self.get(record.job_id)
            if existing is None:
                raise StoreError("the job record exists but could not be read back") from exc
            return existing, False
        return record, True

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record, read consistently; None when there is none. Raises ValueError
        when the item is not a valid job record."""
        failed = "the job table could not be read"
        with table_errors(failed, unreachable=failed):
            answer = self.dynamodb.get_item(
                TableName=self.table_name, Key=self.key(job_id), ConsistentRead=True
            )
        item = answer.get("Item")
        return from_item(item) if item else None

    def latest_jobs_of_session(self, session_id: str, limit: int = 1) -> list[str]:
        """Ids of the session's newest jobs, newest first, through the session index (one
        query, never a scan; the index may lag a new record by about a second)."""
        items = query_items(
            self.dynamodb,
            {
                "TableName": self.table_name,
                "IndexName": schema.SESSION_INDEX,
                "KeyConditionExpression": "#sid = :sid",
                "ExpressionAttributeNames": {"#sid": schema.SESSION_KEY},
                "ExpressionAttributeValues": {":sid": {"S": session_id}},
                "ScanIndexForward": False,
                "Limit": limit,
            },
            failed="the job table's session index could not be read",
            max_items=limit,
        )
        return [
            item[schema.PARTITION_KEY]["S"]
            for item in items
            if isinstance(item.get(schema.PARTITION_KEY), dict)
            and isinstance(item[schema.PARTITION_KEY].get("S"), str)
        ]

    def jobs_needing_attention(self, page_size: int = 100) -> Iterator[StoredJob]:
        """The jobs still in flight, oldest first, through the sparse index. A malformed item
        comes as a MalformedRecord, so that its caller reports it without stopping the
        iteration; index reads may be stale, re-read before acting."""
        for item in query_items(
            self.dynamodb,
            {**self._attention_query(), "Limit": page_size},
            failed="the job table's attention index could not be read",
        ):
            yield read_item(item)

    def jobs_in_flight_on_session(self, session_id: str) -> list[StoredJob]:
        """The jobs still needing attention in one session (index read: may lag the table by
        about a second)."""
        query = self._attention_query()
        query["FilterExpression"] = "session_id = :sid"
        query["ExpressionAttributeValues"] = {
            **query["ExpressionAttributeValues"],
            ":sid": {"S": session_id},
        }
        items = query_items(
            self.dynamodb, query, failed="the job table's attention index could not be read"
        )
        return [read_item(item) for item in items]

    def _attention_query(self) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "IndexName": schema.ATTENTION_INDEX,
            "KeyConditionExpression": "#a = :pending",
            "ExpressionAttributeNames": {"#a": schema.ATTENTION_KEY},
            "ExpressionAttributeValues": {":pending": {"S": ATTENTION_PENDING}},
        }


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

    def put_result_once(self, job_id: str, encoded: bytes) -> str:
        """Store a large result's JSON bytes unless an object is already at the job's result
        key (a conditional write: an agent's stored result is never overwritten); return its
        s3:// URI. The same bytes already there (an earlier attempt of this write) are fine;
        different bytes raise ResultConflictError."""
        key = schema.result_key(job_id)
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=encoded,
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if error_code(exc) not in _EXISTS_CODES:
                raise StoreError("the results bucket refused the write") from exc
            if self._get(key) != encoded:
                raise ResultConflictError(
                    f"a different result is already stored at {self.uri(key)}; it is kept"
                ) from exc
        except BotoCoreError as exc:
            raise StoreError("the results bucket could not be reached") from exc
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

    def put_input(self, job_id: str, stored_input: dict[str, Any]) -> None:
        """Keep a resumable job's input (`{"job_id", "kind", "input", "max_runtime_s"}`) so
        that a fresh session can start the job again."""
        self._put(schema.input_key(job_id), _encoded(stored_input))

    def get_input(self, job_id: str) -> dict[str, Any] | None:
        """A resumable job's kept input; None when there is none (or it is not an object)."""
        return self._get_object(schema.input_key(job_id))

    def delete_input(self, job_id: str) -> None:
        """Remove a kept input whose job was never recorded (its submit failed after it)."""
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=schema.input_key(job_id))
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("the results bucket refused the delete") from exc

    def put_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store a job's checkpoint object (`{"job_id", "attempt", "session_id", "at",
        "state"?}`): the newest write wins."""
        self._put(schema.checkpoint_key(checkpoint["job_id"]), _encoded(checkpoint))

    def get_checkpoint(self, job_id: str) -> dict[str, Any] | None:
        """A job's last checkpoint object; None when it never stored one."""
        return self._get_object(schema.checkpoint_key(job_id))

    def _get_object(self, key: str) -> dict[str, Any] | None:
        body = self._get(key)
        if body is None:
            return None
        try:
            value = json.loads(body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def read_uri(self, uri: str) -> bytes | None:
        """The bytes behind an s3:// URI in this bucket; None when the object is missing."""
        prefix = f"s3://{self.bucket}/"
        if not uri.startswith(prefix):
            raise StoreError(f"{uri} is not in the results bucket {self.bucket}")
        return self._get(uri[len(prefix) :])

    def exists(self, uri: str) -> bool:
        """Whether the object behind an s3:// URI in this bucket exists (a HEAD, no body)."""
        prefix = f"s3://{self.bucket}/"
        if not uri.startswith(prefix):
            return False
        try:
            self._s3.head_object(Bucket=self.bucket, Key=uri[len(prefix) :])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return False
            raise StoreError("the results bucket could not be read") from exc
        except BotoCoreError as exc:
            raise StoreError("the results bucket could not be reached") from exc
        return True

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


def _encoded(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
