"""List jobs newest first through the table's status index (never a scan), a page at a time."""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agentjobs import schema
from agentjobs.cli.errors import CliError, explain_aws_error
from agentjobs.protocol import JobStatus
from agentjobs.record import JobRecord, read_item
from agentjobs.store import StoreError, query_items

STORED_STATUSES = tuple(s for s in JobStatus if s != JobStatus.UNKNOWN)
"""Statuses a record can have; UNKNOWN exists only in answers."""


@dataclass(frozen=True)
class JobFilter:
    """Which jobs to list: statuses (all when empty), a kind, a submitted_at window."""

    statuses: tuple[JobStatus, ...] = ()
    kind: str | None = None
    since: str | None = None
    until: str | None = None


@dataclass(frozen=True)
class JobPage:
    """One page of records, newest first, and the token of the next page (None at the end)."""

    records: list[JobRecord]
    next_token: str | None


def encode_token(record: JobRecord) -> str:
    """An opaque page token: the position of the last record shown."""
    raw = json.dumps([record.submitted_at, record.job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, str]:
    """The position a page token holds; CliError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        submitted_at, job_id = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise CliError(
            "--next-token is not a token printed by `agentjobs list`: copy it exactly"
        ) from exc
    if not isinstance(submitted_at, str) or not isinstance(job_id, str):
        raise CliError("--next-token is not a token printed by `agentjobs list`: copy it exactly")
    return submitted_at, job_id


def list_jobs(
    dynamodb: Any, table: str, job_filter: JobFilter, limit: int, token: str | None = None
) -> JobPage:
    """Up to `limit` records matching the filter, newest first, after the token's position."""
    after = decode_token(token) if token else None
    statuses = job_filter.statuses or STORED_STATUSES
    streams = [
        _query_status(
            dynamodb,
            table=table,
            status=status,
            job_filter=job_filter,
            after=after,
            page_size=limit + 1,
        )
        for status in statuses
    ]
    # Each status's query is already newest first; merging them keeps that order.
    merged = heapq.merge(*streams, key=_position, reverse=True)
    records: list[JobRecord] = []
    for record in merged:
        if len(records) == limit:
            return JobPage(records, encode_token(records[-1]))
        records.append(record)
    return JobPage(records, None)


def _position(record: JobRecord) -> tuple[str, str]:
    return (record.submitted_at, record.job_id)


def _query_status(
    dynamodb: Any,
    *,
    table: str,
    status: JobStatus,
    job_filter: JobFilter,
    after: tuple[str, str] | None,
    page_size: int,
) -> Iterator[JobRecord]:
    condition = "#s = :status"
    values: dict[str, Any] = {":status": {"S": str(status)}}
    bounds = [bound for bound in (job_filter.until, after[0] if after else None) if bound]
    upper = min(bounds) if bounds else None
    if job_filter.since and upper:
        condition += " AND #t BETWEEN :since AND :upper"
        values[":since"] = {"S": job_filter.since}
        values[":upper"] = {"S": upper}
    elif job_filter.since:
        condition += " AND #t >= :since"
        values[":since"] = {"S": job_filter.since}
    elif upper:
        condition += " AND #t <= :upper"
        values[":upper"] = {"S": upper}
    query: dict[str, Any] = {
        "TableName": table,
        "IndexName": schema.STATUS_INDEX,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": {"#s": schema.STATUS_KEY},
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
        "Limit": page_size,
    }
    if "#t" in condition:
        query["ExpressionAttributeNames"]["#t"] = schema.SORT_KEY
    if job_filter.kind:
        query["FilterExpression"] = "#k = :kind"
        query["ExpressionAttributeNames"]["#k"] = "kind"
        values[":kind"] = {"S": job_filter.kind}
    listing = f"listing jobs in table {table}"
    try:
        for item in query_items(dynamodb, query, failed=listing):
            record = read_item(item)
            # One malformed record must not hide the others.
            if isinstance(record, JobRecord) and (after is None or _position(record) < after):
                yield record
    except StoreError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        raise explain_aws_error(cause, listing) from exc
