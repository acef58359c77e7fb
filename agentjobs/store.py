"""Reading and writing job records (DynamoDB) and results and outcomes (S3)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentjobs import schema
from agentjobs.limits import (
    MAX_ERROR_CODE_CHARS,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_POLL_ERROR_CHARS,
    MAX_PROGRESS_MESSAGE_CHARS,
    cap_job_text,
)
from agentjobs.protocol import TERMINAL_STATUSES, JobStatus, encode_json
from agentjobs.record import ATTENTION_PENDING, JobError, JobRecord, Progress, from_item, to_item

LEASE_HOLDER = "lease_holder"
LEASE_UNTIL = "lease_until"
"""Epoch milliseconds until which `lease_holder` alone may change the job (see acquire_lease)."""
LAST_POLL_ERROR = "last_poll_error"
NOTIFY_ERROR = "notify_error"
"""Why a terminal job was never notified: SNS refused even its shortest notification."""

# DynamoDB's answers to a request it refuses for what it holds: an item over 400 KB
# ("Item size has exceeded the maximum allowed size") or a value it does not accept. Sending
# the same write again can never succeed, so these are not retried like throttling or 5xx.
_REFUSED_CODES = frozenset({"ValidationException", "SerializationException"})

# S3 conditional writes (If-None-Match: *): 412 when the key exists, 409 when a concurrent
# write of the key raced this one (retry); see the S3 user guide, "conditional writes".
_EXISTS_CODES = frozenset({"PreconditionFailed", "412"})


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
def _conditional_write(conflict: str) -> Iterator[None]:
    """Translate a conditional write's errors: a failed condition becomes a
    TransitionConflictError saying `conflict`, anything else a StoreError."""
    try:
        yield
    except ClientError as exc:
        if _is_conditional_failure(exc):
            raise TransitionConflictError(conflict) from exc
        code = _error_code(exc)
        if code in _REFUSED_CODES:
            raise RecordRefusedError(
                f"the job table refused the update ({code}): the record would be too large "
                "or holds a value it does not accept"
            ) from exc
        raise StoreError("the job table refused the update") from exc
    except BotoCoreError as exc:
        raise StoreError("the job table could not be reached") from exc


def _is_conditional_failure(exc: ClientError) -> bool:
    return _error_code(exc) == "ConditionalCheckFailedException"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


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

    def latest_jobs_of_session(self, session_id: str, limit: int = 1) -> list[str]:
        """Ids of the session's newest jobs, newest first, through the session index (one
        query, never a scan; the index may lag a new record by about a second)."""
        try:
            page = self._ddb.query(
                TableName=self.table_name,
                IndexName=schema.SESSION_INDEX,
                KeyConditionExpression="#sid = :sid",
                ExpressionAttributeNames={"#sid": schema.SESSION_KEY},
                ExpressionAttributeValues={":sid": {"S": session_id}},
                ScanIndexForward=False,
                Limit=limit,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("the job table's session index could not be read") from exc
        return [
            item[schema.PARTITION_KEY]["S"]
            for item in page.get("Items", [])
            if isinstance(item.get(schema.PARTITION_KEY), dict)
            and isinstance(item[schema.PARTITION_KEY].get("S"), str)
        ]

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

    # The poller's transitions. Every one is conditional on the caller holding the job's
    # lease, so two overlapping ticks never both act on a job, and on the status it
    # expects, so a job moves out of RUNNING exactly once.

    def acquire_lease(self, job_id: str, holder: str, lease_s: float) -> dict[str, Any] | None:
        """Take the job for `lease_s` seconds and return its raw item as it is now (a strongly
        consistent read); None when another holder's lease is live or the job needs nothing."""
        now_ms = int(time.time() * 1000)
        try:
            answer = self._ddb.update_item(
                TableName=self.table_name,
                Key=self._key(job_id),
                UpdateExpression="SET #lh = :me, #lu = :until",
                ConditionExpression=(
                    "attribute_exists(job_id) AND attribute_exists(#att) AND "
                    "(attribute_not_exists(#lu) OR #lu < :now OR #lh = :me)"
                ),
                ExpressionAttributeNames={
                    "#lh": LEASE_HOLDER,
                    "#lu": LEASE_UNTIL,
                    "#att": schema.ATTENTION_KEY,
                },
                ExpressionAttributeValues={
                    ":me": {"S": holder},
                    ":until": {"N": str(now_ms + int(lease_s * 1000))},
                    ":now": {"N": str(now_ms)},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise StoreError("the job table refused the lease") from exc
        except BotoCoreError as exc:
            raise StoreError("the job table could not be reached") from exc
        item: dict[str, Any] = answer["Attributes"]
        return item

    def release_lease(self, job_id: str, holder: str) -> None:
        """Give the job back at once, so that the next tick (or a fast-path call) need not
        wait for the lease to expire. A lease already gone is not an error."""
        try:
            self._update(
                job_id,
                holder,
                "REMOVE #lh, #lu",
                names={"#lu": LEASE_UNTIL},
                returns="NONE",
            )
        except TransitionConflictError:
            return

    def record_progress(self, job_id: str, holder: str, progress: Progress, seen_at: str) -> None:
        """A RUNNING answer: store progress and the last-seen time, clear the failure count
        and release the lease, in one write. Only while the job is RUNNING."""
        self._update(
            job_id,
            holder,
            "SET progress = :p, last_seen_at = :at, updated_at = :at, poll_failures = :zero "
            "REMOVE #lh, #lu, #lpe",
            condition="#s = :running",
            names={"#s": "status", "#lu": LEASE_UNTIL, "#lpe": LAST_POLL_ERROR},
            values={
                ":p": _progress_value(progress),
                ":at": {"S": seen_at},
                ":zero": {"N": "0"},
                ":running": {"S": str(JobStatus.RUNNING)},
            },
            returns="NONE",
        )

    def record_poll_failure(self, job_id: str, holder: str, reason: str, at: str) -> int:
        """Count one failed poll of a RUNNING job and keep its reason; return the count."""
        attributes = self._update(
            job_id,
            holder,
            "ADD poll_failures :one SET #lpe = :why, updated_at = :at",
            condition="#s = :running",
            names={"#s": "status", "#lpe": LAST_POLL_ERROR},
            values={
                ":one": {"N": "1"},
                ":why": {"S": cap_job_text(reason, MAX_POLL_ERROR_CHARS)},
                ":at": {"S": at},
                ":running": {"S": str(JobStatus.RUNNING)},
            },
            returns="UPDATED_NEW",
        )
        return int(attributes.get("poll_failures", {}).get("N", "1"))

    def finish(
        self,
        job_id: str,
        holder: str,
        status: JobStatus,
        *,
        finished_at: str,
        at: str,
        result: Any = None,
        result_uri: str | None = None,
        error: JobError | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Move an unfinished job to a terminal status, once; return the new raw item.

        A SUCCEEDED job keeps `result_uri` when given, else `result` inline: the caller
        decides where a large result goes (ResultStore.put_result). The error and progress
        messages are cut to their limits. Raises TransitionConflictError when the job is
        already terminal or the lease was lost, RecordRefusedError when the table refuses
        the record for its content.
        """
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"{status} is not a terminal status")
        sets = ["#s = :status", "finished_at = :finished", "updated_at = :at"]
        removes = [LAST_POLL_ERROR]
        values: dict[str, Any] = {
            ":status": {"S": str(status)},
            ":finished": {"S": finished_at},
            ":at": {"S": at},
        }
        if status == JobStatus.SUCCEEDED:
            if result_uri is not None:
                sets.append("result_uri = :uri")
                values[":uri"] = {"S": result_uri}
                removes.append("#result")
            else:
                sets.append("#result = :result")
                values[":result"] = {"S": encode_json(result)}
        if error is not None:
            sets.append("#error = :error")
            values[":error"] = _error_value(error)
        if progress is not None:
            sets.append("progress = :p")
            values[":p"] = _progress_value(progress)
        terminal = sorted(str(t) for t in TERMINAL_STATUSES)
        values.update({f":t{i}": {"S": name} for i, name in enumerate(terminal)})
        in_terminal = ", ".join(f":t{i}" for i in range(len(terminal)))
        return self._update(
            job_id,
            holder,
            f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            condition=f"(attribute_not_exists(#s) OR NOT #s IN ({in_terminal}))",
            names={
                name: attribute
                for name, attribute in (
                    ("#s", "status"),
                    ("#result", "result"),
                    ("#error", "error"),
                )
                if name == "#s" or name in " ".join(sets + removes)
            },
            values=values,
        )

    def record_notified(
        self, job_id: str, holder: str, at: str, *, release: bool = False
    ) -> dict[str, Any]:
        """Record that a terminal job's notification was published (the first time wins);
        with `release`, give the lease back in the same write (the job now only waits for
        its shared session to be stopped)."""
        return self._update(
            job_id,
            holder,
            "SET notified_at = if_not_exists(notified_at, :at), updated_at = :at"
            + (" REMOVE #lh, #lu" if release else ""),
            condition=_terminal_condition(),
            names={"#s": "status", **({"#lu": LEASE_UNTIL} if release else {})},
            values={":at": {"S": at}, **_terminal_values()},
        )

    def record_notify_refused(
        self, job_id: str, holder: str, error: JobError, at: str, *, release: bool = False
    ) -> dict[str, Any]:
        """Record that SNS refused every form of a terminal job's notification, so that the
        job is closed like a notified one instead of being published again on every tick.
        The job's status and outcome stay as they are; `notify_error` says what happened."""
        return self._update(
            job_id,
            holder,
            "SET #ne = if_not_exists(#ne, :e), updated_at = :at"
            + (" REMOVE #lh, #lu" if release else ""),
            condition=f"{_terminal_condition()} AND attribute_not_exists(notified_at)",
            names={
                "#s": "status",
                "#ne": NOTIFY_ERROR,
                **({"#lu": LEASE_UNTIL} if release else {}),
            },
            values={":e": _error_value(error), ":at": {"S": at}, **_terminal_values()},
        )

    def record_session_stopped(self, job_id: str, holder: str, at: str) -> None:
        """Record that a terminal, notified job's session is stopped, and drop the job from
        the attention index (and its lease): nothing is left to do for it."""
        self._update(
            job_id,
            holder,
            "SET session_stopped_at = if_not_exists(session_stopped_at, :at), updated_at = :at "
            "REMOVE #att, #lh, #lu",
            condition=f"{_terminal_condition()} AND {_NOTIFICATION_DONE}",
            names={"#s": "status", "#att": schema.ATTENTION_KEY, "#lu": LEASE_UNTIL},
            values={":at": {"S": at}, **_terminal_values()},
            returns="NONE",
        )

    def close_final(self, job_id: str, holder: str, at: str) -> None:
        """Record a terminal, notified job's session as stopped and drop the job from the
        attention index, in one write and without taking its lease first: only stopping the
        session was left, and its caller has stopped it. Refused (TransitionConflictError)
        while another poller holds a live lease, or when the job is not final or is gone
        from the index already."""
        now_ms = int(time.time() * 1000)
        conflict = f"job {job_id} is not final, already closed, or leased by another poller"
        with _conditional_write(conflict):
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self._key(job_id),
                UpdateExpression=(
                    "SET session_stopped_at = if_not_exists(session_stopped_at, :at), "
                    "updated_at = :at REMOVE #att, #lh, #lu"
                ),
                ConditionExpression=(
                    f"{_terminal_condition()} AND {_NOTIFICATION_DONE} AND "
                    "attribute_exists(#att) AND "
                    "(attribute_not_exists(#lu) OR #lu < :now OR #lh = :me)"
                ),
                ExpressionAttributeNames={
                    "#s": "status",
                    "#att": schema.ATTENTION_KEY,
                    "#lh": LEASE_HOLDER,
                    "#lu": LEASE_UNTIL,
                },
                ExpressionAttributeValues={
                    ":at": {"S": at},
                    ":me": {"S": holder},
                    ":now": {"N": str(now_ms)},
                    **_terminal_values(),
                },
            )

    def jobs_in_flight_on_session(self, session_id: str) -> list[dict[str, Any]]:
        """Raw items of the jobs still needing attention in one session (index read: may lag
        the table by about a second)."""
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": schema.ATTENTION_INDEX,
                "KeyConditionExpression": "#a = :pending",
                "FilterExpression": "session_id = :sid",
                "ExpressionAttributeNames": {"#a": schema.ATTENTION_KEY},
                "ExpressionAttributeValues": {
                    ":pending": {"S": ATTENTION_PENDING},
                    ":sid": {"S": session_id},
                },
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            try:
                page = self._ddb.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StoreError("the job table's attention index could not be read") from exc
            items.extend(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def _key(self, job_id: str) -> dict[str, Any]:
        return {schema.PARTITION_KEY: {"S": job_id}}

    def _update(
        self,
        job_id: str,
        holder: str,
        expression: str,
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        returns: str = "ALL_NEW",
    ) -> dict[str, Any]:
        full_condition = "#lh = :holder" + (f" AND {condition}" if condition else "")
        conflict = f"job {job_id} changed under this poller (lease lost or already moved)"
        with _conditional_write(conflict):
            answer = self._ddb.update_item(
                TableName=self.table_name,
                Key=self._key(job_id),
                UpdateExpression=expression,
                ConditionExpression=full_condition,
                ExpressionAttributeNames={"#lh": LEASE_HOLDER, **(names or {})},
                ExpressionAttributeValues={":holder": {"S": holder}, **(values or {})},
                ReturnValues=returns,
            )
        attributes: dict[str, Any] = answer.get("Attributes", {})
        return attributes


_FINISH_NAMES = (("#s", "status"), ("#result", "result"), ("#error", "error"))


_NOTIFICATION_DONE = f"(attribute_exists(notified_at) OR attribute_exists({NOTIFY_ERROR}))"
"""A terminal job needs no more publishing: it was notified, or SNS refused it for good."""


def _progress_value(progress: Progress) -> dict[str, Any]:
    wire = progress.to_wire()
    percent = wire["percent"]
    number = repr(int(percent)) if float(percent).is_integer() else repr(float(percent))
    message = cap_job_text(wire["message"], MAX_PROGRESS_MESSAGE_CHARS)
    return {"M": {"percent": {"N": number}, "message": {"S": message}}}


def _error_value(error: JobError) -> dict[str, Any]:
    code = cap_job_text(error.code, MAX_ERROR_CODE_CHARS)
    message = cap_job_text(error.message, MAX_ERROR_MESSAGE_CHARS)
    return {"M": {"code": {"S": code}, "message": {"S": message}}}


def _terminal_condition() -> str:
    names = ", ".join(f":t{i}" for i in range(len(TERMINAL_STATUSES)))
    return f"#s IN ({names})"


def _terminal_values() -> dict[str, Any]:
    terminal = sorted(str(t) for t in TERMINAL_STATUSES)
    return {f":t{i}": {"S": name} for i, name in enumerate(terminal)}


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
            if _error_code(exc) not in _EXISTS_CODES:
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
