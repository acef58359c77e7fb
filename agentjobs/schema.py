"""The job and history tables' and results bucket's layout: one definition for CDK, local
stack and code."""

from __future__ import annotations

from typing import Any

PARTITION_KEY = "job_id"

ATTENTION_INDEX = "attention-index"
"""Sparse index of the jobs the poller still has work on (running, un-notified, or with a
live session). Its key `attention` is removed once a job is fully done, so a poller tick
reads only jobs in flight, never the table's history."""
ATTENTION_KEY = "attention"

STATUS_INDEX = "status-index"
"""Jobs by status, newest first: what `agentjobs list` queries instead of scanning."""
STATUS_KEY = "status"

SESSION_INDEX = "session-index"
"""A session's jobs, newest first: how an agent process that does not know a job (its
session was stopped or recycled) finds the session's latest one without a scan. Keys only:
a record's later updates never touch it, only its creation does."""
SESSION_KEY = "session_id"

SORT_KEY = "submitted_at"
TTL_ATTRIBUTE = "expires_at"

RESULT_PREFIX = "jobs/"
"""Everything the agent writes to the results bucket lives under this prefix."""


INPUT_PREFIX = "inputs/"
"""Where callers upload job input (a data_report's CSV): the only objects an agent reads on a
caller's behalf, so a caller can never make a job read another job's results."""


def outcome_key(job_id: str) -> str:
    """Where a job's durable outcome lives; derivable from the job id alone."""
    return f"{RESULT_PREFIX}{job_id}/outcome.json"


def result_key(job_id: str) -> str:
    """Where a result too large for the record lives."""
    return f"{RESULT_PREFIX}{job_id}/result.json"


def input_key(job_id: str) -> str:
    """Where a resumable job's validated input is kept, so that a fresh session can start it
    again: written by the agent at submit, before the record."""
    return f"{RESULT_PREFIX}{job_id}/input.json"


def checkpoint_key(job_id: str) -> str:
    """Where a resumable job's last checkpoint (and the attempt it was taken in) lives."""
    return f"{RESULT_PREFIX}{job_id}/checkpoint.json"


EVENTS_PARTITION_KEY = "job_id"
EVENTS_SORT_KEY = "seq"
"""`{at}#{8 hex}`: a job's events sort by time, and two written at once never collide."""


def events_table_definition() -> dict[str, Any]:
    """The history table: a job's events under its id, oldest first by `seq`; TTL'd with the
    record (TTL_ATTRIBUTE). A table of its own, since the job table has no sort key."""
    return {
        "AttributeDefinitions": [
            {"AttributeName": EVENTS_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": EVENTS_SORT_KEY, "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": EVENTS_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": EVENTS_SORT_KEY, "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def table_definition() -> dict[str, Any]:
    """Key schema, attributes and indexes, in the shape of DynamoDB's CreateTable call."""
    return {
        "AttributeDefinitions": [
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": ATTENTION_KEY, "AttributeType": "S"},
            {"AttributeName": STATUS_KEY, "AttributeType": "S"},
            {"AttributeName": SESSION_KEY, "AttributeType": "S"},
            {"AttributeName": SORT_KEY, "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": ATTENTION_INDEX,
                "KeySchema": [
                    {"AttributeName": ATTENTION_KEY, "KeyType": "HASH"},
                    {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": STATUS_INDEX,
                "KeySchema": [
                    {"AttributeName": STATUS_KEY, "KeyType": "HASH"},
                    {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": SESSION_INDEX,
                "KeySchema": [
                    {"AttributeName": SESSION_KEY, "KeyType": "HASH"},
                    {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
