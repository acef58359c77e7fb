"""The job record: one shape for the agent's memory, the DynamoDB item and the wire answer."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from agentjobs.limits import (
    MAX_DURABLE_RUNTIME_S,
    MAX_ERROR_CODE_CHARS,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_PROGRESS_MESSAGE_CHARS,
    cap_job_text,
)
from agentjobs.protocol import (
    MAX_RUNTIME_S,
    TERMINAL_STATUSES,
    ErrorCode,
    JobStatus,
    encode_json,
    parse_time,
)

INLINE_RESULT_LIMIT = 64 * 1024
"""Results whose JSON is larger than this many bytes go to S3 and are answered by `result_uri`.

A DynamoDB item holds 400 KB; 64 KB keeps every record cheap to read and write (one
record read costs 16 read units at most) and leaves room for the other attributes."""

ATTENTION_PENDING = "PENDING"
"""Value of the sparse `attention` key while a job still needs the poller."""

NOTIFY_ERROR = "notify_error"
"""Why a terminal job was never notified: SNS refused even its shortest notification."""


@dataclass(frozen=True)
class Progress:
    """How far a running job has come, as the job itself reports it."""

    percent: float = 0.0
    message: str = ""

    def to_wire(self) -> dict[str, Any]:
        """The progress as it appears in answers and records."""
        return {"percent": round(self.percent, 1), "message": self.message}

    @classmethod
    def from_wire(cls, value: object) -> Progress:
        """Read progress leniently: a malformed one becomes zero progress, never an error."""
        if not isinstance(value, dict):
            return cls()
        percent = value.get("percent", 0.0)
        message = value.get("message", "")
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            percent = 0.0
        if math.isnan(percent):  # a garbled answer's NaN would make every progress write fail
            percent = 0.0
        return cls(
            percent=min(max(float(percent), 0.0), 100.0),
            # Whoever answered, a message read here is fit to store and publish.
            message=cap_job_text(message, MAX_PROGRESS_MESSAGE_CHARS)
            if isinstance(message, str)
            else "",
        )


@dataclass(frozen=True)
class JobError:
    """Why a job did not succeed."""

    code: str
    message: str

    def to_wire(self) -> dict[str, str]:
        """The error as it appears in answers and records."""
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_wire(cls, value: object) -> JobError | None:
        """Read an error object; None when absent or malformed."""
        if not isinstance(value, dict):
            return None
        code, message = value.get("code"), value.get("message")
        if not isinstance(code, str) or not isinstance(message, str):
            return None
        return cls(
            code=cap_job_text(code, MAX_ERROR_CODE_CHARS),
            message=cap_job_text(message, MAX_ERROR_MESSAGE_CHARS),
        )

    @classmethod
    def of(cls, code: ErrorCode, message: str) -> JobError:
        """An error with one of the protocol's codes."""
        return cls(code=str(code), message=message)


class _Lifecycle:
    """Where a stored job stands, read the same way from a valid record and a malformed one."""

    status: str | None
    session_id: str | None
    run_session_id: str | None
    resumable: bool
    submitted_at: str | None
    deadline_at: str | None
    notified_at: str | None
    notify_error: JobError | None

    @property
    def active_session_id(self) -> str | None:
        """The session the job's current attempt runs in: the one the poller resumed it in,
        else the one it was submitted in. Poll, stop and cancel go here."""
        return self.run_session_id or self.session_id

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
        """When the job must have ended: its own deadline, never past the 8-hour session cap
        (a resumable job's cap is MAX_DURABLE_RUNTIME_S: it moves to fresh sessions)."""
        longest = MAX_DURABLE_RUNTIME_S if self.resumable else MAX_RUNTIME_S
        try:
            cap = parse_time(self.submitted_at or "") + timedelta(seconds=longest)
            own = parse_time(self.deadline_at) if self.deadline_at else cap
        except ValueError:
            return None
        return min(own, cap)


@dataclass(frozen=True)
class JobRecord(_Lifecycle):
    """Everything known about one job. Times are protocol time strings (see protocol.utc_now)."""

    job_id: str
    session_id: str
    kind: str
    """The job's name as its agent registered it: an open string, never a closed set."""
    status: JobStatus
    submitted_at: str
    updated_at: str
    max_runtime_s: float
    deadline_at: str
    progress: Progress = field(default_factory=Progress)
    finished_at: str | None = None
    result: Any = None
    result_uri: str | None = None
    error: JobError | None = None
    client_token: str | None = None
    owner: str | None = None
    notified_at: str | None = None
    session_stopped_at: str | None = None
    last_seen_at: str | None = None
    poll_failures: int = 0
    expires_at: int | None = None
    request_fingerprint: str | None = None
    """sha256 of the submit's kind, input and max_runtime_s (see request_fingerprint): a
    client_token reused for a different request is refused, not answered with this job."""
    notify_error: JobError | None = None
    """Set by the poller when SNS refused every form of the job's notification."""
    resumable: bool = False
    """The job's kind is declared resumable: a lost session is resumed (attempts permitting),
    and a session near its max lifetime is handed off to a fresh one."""
    attempt: int = 1
    """Which try this is: 1, then one more for each lost session or retried failure."""
    max_attempts: int = 1
    run_session_id: str | None = None
    """The session the poller resumed the job in; None while it runs where it was submitted.
    `session_id` stays the caller's session for good (see active_session_id)."""
    run_started_at: str | None = None
    """When the job was given its active session (None: at submit)."""
    checkpoint_at: str | None = None
    """When the job's last checkpoint was taken, as the poller last read it."""
    resume_pending: bool = False
    """The poller gave the job a fresh session and has not yet seen the agent accept `resume`."""

    @property
    def has_inline_result(self) -> bool:
        """Whether the record holds the job's result itself (not a pointer to S3)."""
        return self.status == JobStatus.SUCCEEDED and self.result_uri is None

    @property
    def attempts_left(self) -> int:
        """How many more tries the job may have."""
        return max(self.max_attempts - self.attempt, 0)

    def evolve(self, **changes: Any) -> JobRecord:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_answer(self, *, with_outcome: bool) -> dict[str, Any]:
        """The record as the agent answers `status` (no outcome) or `result` (with it)."""
        answer: dict[str, Any] = {
            "job_id": self.job_id,
            "session_id": self.session_id,
            "kind": str(self.kind),
            "status": str(self.status),
            "progress": self.progress.to_wire(),
            "submitted_at": self.submitted_at,
        }
        if self.resumable:
            answer["attempt"] = self.attempt
            answer["max_attempts"] = self.max_attempts
        if self.checkpoint_at is not None:
            answer["checkpoint_at"] = self.checkpoint_at
        if self.finished_at is not None:
            answer["finished_at"] = self.finished_at
        if self.error is not None:
            answer["error"] = self.error.to_wire()
        if with_outcome and self.status == JobStatus.SUCCEEDED:
            if self.result_uri is not None:
                answer["result_uri"] = self.result_uri
            else:
                answer["result"] = self.result
        return answer


def visible_to(record: JobRecord, session_id: str, owner: str | None) -> bool:
    """Whether a caller may read or cancel this job: its owner, from any session; in the
    session that ran it, a caller that names no user (the poller, the app that submitted it);
    never another user. A user id reaches the agent only through InvokeAgentRuntimeForUser, a
    right of its own (aws-cdk: RUNTIME_INVOKE_USER_PERMS, "required when using the
    X-Amzn-Bedrock-AgentCore-Runtime-User-Id header"), so a caller cannot pose as a user."""
    if record.owner is not None and owner == record.owner:
        return True
    in_its_session = session_id in (record.session_id, record.run_session_id)
    return in_its_session and (record.owner is None or owner is None)


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
class MalformedRecord(_Lifecycle):
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


StoredJob = JobRecord | MalformedRecord
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


_CLIENT_TOKEN_NAMESPACE = uuid.UUID("6f1c1d2e-3b0a-4c55-9a51-0c3c7c1f5a10")


def new_job_id(
    client_token: str | None = None, owner: str | None = None, session_id: str | None = None
) -> str:
    """A fresh job id, or the same id every time for the same caller and client token, so
    that a retried submit finds its job with one conditional write. The caller is the owner
    when there is one, else the session: two callers' equal tokens never name one job."""
    if client_token is None:
        return uuid.uuid4().hex
    scope = f"owner\x1f{owner}" if owner is not None else f"session\x1f{session_id or ''}"
    return uuid.uuid5(_CLIENT_TOKEN_NAMESPACE, f"{scope}\x1f{client_token}").hex


def request_fingerprint(
    kind: str, job_input: dict[str, Any], max_runtime_s: float, max_attempts: int = 1
) -> str:
    """sha256 (hex) of a submit's kind, input, effective max_runtime_s and max_attempts as
    canonical JSON (sorted keys, compact, UTF-8): equal requests, however their fields were
    ordered, match. max_attempts enters only when it is not 1, so the fingerprints of requests
    from before it existed are unchanged."""
    fields: dict[str, Any] = {
        "input": job_input,
        "kind": str(kind),
        "max_runtime_s": float(max_runtime_s),
    }
    if max_attempts != 1:
        fields["max_attempts"] = int(max_attempts)
    canonical = json.dumps(
        fields,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
