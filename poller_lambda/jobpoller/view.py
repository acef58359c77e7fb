"""A tolerant reading of a raw job item: enough to reconcile it even when it is malformed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agentjobs.notifier import Notification
from agentjobs.protocol import MAX_RUNTIME_S, TERMINAL_STATUSES, parse_time
from agentjobs.record import JobError, from_item
from agentjobs.store import LEASE_UNTIL, NOTIFY_ERROR


@dataclass(frozen=True)
class JobView:
    """What the poller needs from a job item. `problem` is set when the item is not a valid
    job record (a field missing or malformed): such a job is failed, never polled."""

    job_id: str
    status: str | None
    session_id: str | None
    kind: str | None
    submitted_at: str | None
    deadline_at: str | None
    finished_at: str | None
    notified_at: str | None
    notify_error: JobError | None
    session_stopped_at: str | None
    last_seen_at: str | None
    lease_until_ms: int | None
    max_runtime_s: float | None
    result: Any
    has_result: bool
    result_uri: str | None
    error: JobError | None
    problem: str | None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> JobView:
        """Read a raw DynamoDB item; never raises."""
        text = {name: _text(item, name) for name in _TEXT}
        problem: str | None = None
        try:
            from_item(item)
        except ValueError as exc:
            problem = str(exc)[:300]
        result_text = _text(item, "result")
        result: Any = None
        has_result = False
        if result_text is not None:
            try:
                result, has_result = json.loads(result_text), True
            except ValueError:
                problem = problem or "the stored result is not JSON"
        return cls(
            job_id=_text(item, "job_id") or "",
            result=result,
            has_result=has_result,
            error=_error(item, "error"),
            notify_error=_error(item, NOTIFY_ERROR),
            lease_until_ms=_int(item, LEASE_UNTIL),
            max_runtime_s=_float(item, "max_runtime_s"),
            problem=problem,
            **text,
        )

    @property
    def is_terminal(self) -> bool:
        """True once the job has its final status."""
        return self.status in TERMINAL_STATUSES

    @property
    def needs_notification(self) -> bool:
        """Not yet notified, nor refused by SNS for good."""
        return self.notified_at is None and self.notify_error is None

    @property
    def is_final(self) -> bool:
        """Terminal and notified (or refused by SNS for good): only stopping its session is
        left."""
        return self.is_terminal and not self.needs_notification

    def deadline(self) -> datetime | None:
        """When the job must have ended: its own deadline, never past the 8-hour session cap."""
        try:
            cap = parse_time(self.submitted_at or "") + timedelta(seconds=MAX_RUNTIME_S)
            own = parse_time(self.deadline_at) if self.deadline_at else cap
        except ValueError:
            return None
        return min(own, cap)

    def notification(self, *, email_preview: bool = False) -> Notification:
        """The notification of this (terminal) job."""
        return Notification(
            job_id=self.job_id,
            status=self.status or "UNKNOWN",
            kind=self.kind,
            session_id=self.session_id,
            submitted_at=self.submitted_at,
            finished_at=self.finished_at,
            result=self.result,
            has_result=self.has_result and self.result_uri is None,
            result_uri=self.result_uri,
            error=self.error,
            email_preview=email_preview,
        )


_TEXT = (
    "status",
    "session_id",
    "kind",
    "submitted_at",
    "deadline_at",
    "finished_at",
    "notified_at",
    "session_stopped_at",
    "last_seen_at",
    "result_uri",
)


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    if isinstance(value, dict) and isinstance(value.get("S"), str):
        text: str = value["S"]
        return text
    return None


def _error(item: dict[str, Any], name: str) -> JobError | None:
    value = item.get(name)
    error_map = value.get("M") if isinstance(value, dict) else None
    if not isinstance(error_map, dict):
        return None
    return JobError.from_wire({k: v.get("S") for k, v in error_map.items() if isinstance(v, dict)})


def _float(item: dict[str, Any], name: str) -> float | None:
    value = item.get(name)
    try:
        return float(value["N"]) if isinstance(value, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def _int(item: dict[str, Any], name: str) -> int | None:
    number = _float(item, name)
    return int(number) if number is not None else None
