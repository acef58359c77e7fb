"""A job's history: the events of its life (submitted, checkpointed, resumed, ended...), kept
under its id in the history table, oldest first."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agentjobs import schema
from agentjobs.limits import MAX_EVENT_DETAIL_CHARS, MAX_EVENTS_PER_JOB, cap_job_text
from agentjobs.protocol import utc_now
from agentjobs.store import query_items, table_errors

Detail = Mapping[str, str | int | float | bool | None]


class EventType(StrEnum):
    """What happened to a job. Written by the agent (submitted, progress, checkpointed,
    retried) or by the poller (session_lost, handed_off, resumed, ended, notified)."""

    SUBMITTED = "submitted"
    PROGRESS = "progress"
    """A progress milestone: the job's progress crossed a multiple of 10 %."""
    CHECKPOINTED = "checkpointed"
    RETRIED = "retried"
    SESSION_LOST = "session_lost"
    HANDED_OFF = "handed_off"
    """The job's session neared its max lifetime: the job moves to a fresh one."""
    RESUMED = "resumed"
    ENDED = "ended"
    NOTIFIED = "notified"


@dataclass(frozen=True)
class Event:
    """One event of a job's life. `detail` holds short facts (a status, an error code, a
    percent, a session id), each text capped when it is stored."""

    type: str
    at: str = field(default_factory=utc_now)
    attempt: int = 1
    session_id: str | None = None
    detail: Detail = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The event as `agentjobs events --json` prints it."""
        wire: dict[str, Any] = {"type": self.type, "at": self.at, "attempt": self.attempt}
        if self.session_id is not None:
            wire["session_id"] = self.session_id
        wire["detail"] = dict(self.detail)
        return wire


class EventLog:
    """The history table named by EVENTS_TABLE. Appends are single conditional puts; a failed
    one raises StoreError, which writers log and count rather than fail the job for."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table_name = table_name

    def append(self, job_id: str, event: Event, expires_at: int | None) -> None:
        """Add `event` to the job's history; StoreError when the table refuses it."""
        item: dict[str, Any] = {
            schema.EVENTS_PARTITION_KEY: {"S": job_id},
            schema.EVENTS_SORT_KEY: {"S": _sequence(event.at)},
            "type": {"S": event.type},
            "at": {"S": event.at},
            "attempt": {"N": str(event.attempt)},
            "detail": {"S": json.dumps(_capped(event.detail), ensure_ascii=False)},
        }
        if event.session_id is not None:
            item["session_id"] = {"S": event.session_id}
        if expires_at is not None:
            item[schema.TTL_ATTRIBUTE] = {"N": str(expires_at)}
        with table_errors("the history table refused the event"):
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(#seq)",
                ExpressionAttributeNames={"#seq": schema.EVENTS_SORT_KEY},
            )

    def list(self, job_id: str, limit: int = MAX_EVENTS_PER_JOB) -> list[Event]:
        """The job's events, oldest first (at most `limit`); StoreError when unreadable. An
        item that is not an event is skipped: a history is read, never refused."""
        request = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :job",
            "ExpressionAttributeNames": {"#pk": schema.EVENTS_PARTITION_KEY},
            "ExpressionAttributeValues": {":job": {"S": job_id}},
            "ConsistentRead": True,
        }
        items = query_items(
            self.dynamodb, request, failed="the history table could not be read", max_items=limit
        )
        return [event for item in items if (event := _event_of(item)) is not None]


def _sequence(at: str) -> str:
    # Time first, so a query reads the events in order; the process's clock next, so two events
    # one writer appends in the same millisecond keep their order; then a random tail.
    return f"{at}#{time.monotonic_ns() % 10**15:015d}{secrets.token_hex(2)}"


def _capped(detail: Detail) -> dict[str, Any]:
    return {
        str(name)[:64]: cap_job_text(value, MAX_EVENT_DETAIL_CHARS)
        if isinstance(value, str)
        else value
        for name, value in detail.items()
    }


def _event_of(item: dict[str, Any]) -> Event | None:
    try:
        detail = json.loads(item.get("detail", {}).get("S", "{}"))
        return Event(
            type=item["type"]["S"],
            at=item["at"]["S"],
            attempt=int(item.get("attempt", {}).get("N", "1")),
            session_id=item.get("session_id", {}).get("S"),
            detail=detail if isinstance(detail, dict) else {},
        )
    except (KeyError, TypeError, ValueError):
        return None
