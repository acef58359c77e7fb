"""A job's DynamoDB item: the record's encoding (to_item, from_item) and the tolerant reader."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from agentjobs.protocol import JobStatus, encode_json
from agentjobs.record import NOTIFY_ERROR, JobError, JobLifecycle, JobRecord, Progress

# DynamoDB item encoding. Results are stored as JSON text: arbitrary JSON (floats, empty
# strings, deep nesting) does not survive DynamoDB's number and map types unchanged.

_TEXT_FIELDS = (
    "session_id",
    "submitted_at",
    "updated_at",
    "deadline_at",
    "finished_at",
    "result_uri",
    "client_token",
    "owner",
    "notified_at",
    "session_stopped_at",
    "last_seen_at",
    "request_fingerprint",
    "run_session_id",
    "run_started_at",
    "checkpoint_at",
)


def to_item(record: JobRecord) -> dict[str, Any]:
    """The record as a low-level DynamoDB item (without the `attention` index key)."""
    item: dict[str, Any] = {
        "job_id": {"S": record.job_id},
        "kind": {"S": str(record.kind)},
        "status": {"S": str(record.status)},
        "max_runtime_s": {"N": _number(record.max_runtime_s)},
        "poll_failures": {"N": str(record.poll_failures)},
        "progress": {
            "M": {
                "percent": {"N": _number(record.progress.percent)},
                "message": {"S": record.progress.message},
            }
        },
    }
    for name in _TEXT_FIELDS:
        value = getattr(record, name)
        if value is not None:
            item[name] = {"S": value}
    if record.status == JobStatus.SUCCEEDED and record.result_uri is None:
        item["result"] = {"S": encode_json(record.result)}
    if record.error is not None:
        item["error"] = {
            "M": {"code": {"S": record.error.code}, "message": {"S": record.error.message}}
        }
    if record.expires_at is not None:
        item["expires_at"] = {"N": str(record.expires_at)}
    if record.resumable or record.max_attempts != 1 or record.attempt != 1:
        item["resumable"] = {"BOOL": record.resumable}
        item["attempt"] = {"N": str(record.attempt)}
        item["max_attempts"] = {"N": str(record.max_attempts)}
    if record.resume_pending:
        item["resume_pending"] = {"BOOL": True}
    if record.notify_error is not None:
        item[NOTIFY_ERROR] = {
            "M": {
                "code": {"S": record.notify_error.code},
                "message": {"S": record.notify_error.message},
            }
        }
    return item


def from_item(item: dict[str, Any]) -> JobRecord:
    """A low-level DynamoDB item back to a record. Raises ValueError when it is not one."""
    try:
        text = {name: item[name]["S"] for name in _TEXT_FIELDS if name in item}
        progress_map = item.get("progress", {}).get("M", {})
        error_map = item.get("error", {}).get("M")
        result_text = item.get("result", {}).get("S")
        return JobRecord(
            job_id=item["job_id"]["S"],
            kind=_kind(item["kind"]["S"]),
            status=JobStatus(item["status"]["S"]),
            max_runtime_s=float(item["max_runtime_s"]["N"]),
            poll_failures=int(item.get("poll_failures", {}).get("N", "0")),
            progress=Progress(
                percent=float(progress_map.get("percent", {}).get("N", "0")),
                message=progress_map.get("message", {}).get("S", ""),
            ),
            error=(
                JobError(code=error_map["code"]["S"], message=error_map["message"]["S"])
                if error_map
                else None
            ),
            result=json.loads(result_text) if result_text is not None else None,
            expires_at=int(item["expires_at"]["N"]) if "expires_at" in item else None,
            notify_error=_error_of(item, NOTIFY_ERROR),
            resumable=_flag(item, "resumable"),
            attempt=_count(item, "attempt"),
            max_attempts=_count(item, "max_attempts"),
            resume_pending=_flag(item, "resume_pending"),
            session_id=text.pop("session_id"),
            submitted_at=text.pop("submitted_at"),
            updated_at=text.pop("updated_at"),
            deadline_at=text.pop("deadline_at"),
            **text,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a job record: {exc}") from exc


@dataclass(frozen=True)
class MalformedRecord(JobLifecycle):
    """An item of the job table that is not a valid job record (a field missing or malformed):
    what could be read of it, and `problem`, why it is not one. The poller fails such a job,
    never polls it; a listing reports and skips it."""

    job_id: str
    problem: str
    status: str | None = None
    session_id: str | None = None
    kind: str | None = None
    submitted_at: str | None = None
    deadline_at: str | None = None
    finished_at: str | None = None
    notified_at: str | None = None
    session_stopped_at: str | None = None
    last_seen_at: str | None = None
    max_runtime_s: float | None = None
    result: Any = None
    result_uri: str | None = None
    error: JobError | None = None
    notify_error: JobError | None = None
    has_result: bool = False
    run_session_id: str | None = None
    resumable: bool = False

    @property
    def has_inline_result(self) -> bool:
        """Whether the item holds a readable result itself (not a pointer to S3)."""
        return self.has_result and self.result_uri is None


# Annotated: across the import cycle with agentjobs.record, mypy reads a bare union as a variable.
StoredJob: TypeAlias = JobRecord | MalformedRecord
"""A job as the table holds it: a record, or an item that is not a valid one."""


def read_item(item: dict[str, Any]) -> StoredJob:
    """Read a raw DynamoDB job item; never raises. A valid one is a JobRecord; any other is a
    MalformedRecord holding what could be read, so that one bad item is reported, not fatal."""
    try:
        return from_item(item)
    except ValueError as exc:
        problem = str(exc)[:300]
    result_text = _text(item, "result")
    result: Any = None
    has_result = False
    if result_text is not None:
        with contextlib.suppress(ValueError):
            result, has_result = json.loads(result_text), True
    max_runtime = item.get("max_runtime_s")
    try:
        max_runtime_s = float(max_runtime["N"]) if isinstance(max_runtime, dict) else None
    except (KeyError, TypeError, ValueError):
        max_runtime_s = None
    return MalformedRecord(
        job_id=_text(item, "job_id") or "",
        problem=problem,
        result=result,
        has_result=has_result,
        error=_error_of(item, "error"),
        notify_error=_error_of(item, NOTIFY_ERROR),
        max_runtime_s=max_runtime_s,
        # A malformed record is failed, never resumed: only its sessions matter here.
        resumable=False,
        **{name: _text(item, name) for name in _LENIENT_TEXT},
    )


_LENIENT_TEXT = (
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
    "run_session_id",
)


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    if isinstance(value, dict) and isinstance(value.get("S"), str):
        text: str = value["S"]
        return text
    return None


def _flag(item: dict[str, Any], name: str) -> bool:
    value = item.get(name, {}).get("BOOL", False)
    if not isinstance(value, bool):
        raise TypeError(f"{name!r} is not a boolean")
    return value


def _count(item: dict[str, Any], name: str) -> int:
    count = int(item.get(name, {}).get("N", "1"))
    if count < 1:
        raise ValueError(f"{name!r} is below 1")
    return count


def _error_of(item: dict[str, Any], name: str) -> JobError | None:
    value = item.get(name)
    error_map = value.get("M") if isinstance(value, dict) else None
    if not isinstance(error_map, dict):
        return None
    return JobError.from_wire({k: v.get("S") for k, v in error_map.items() if isinstance(v, dict)})


def _kind(value: object) -> str:
    # Any agent's job name is a kind: the record holds it as the agent wrote it.
    if not isinstance(value, str) or not value:
        raise TypeError("'kind' is not a non-empty string")
    return value


def _number(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))
