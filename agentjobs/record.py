"""The job record: one shape for the agent's memory and the wire answer (its DynamoDB item is in
record_items)."""

from __future__ import annotations

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


class JobLifecycle:
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
class JobRecord(JobLifecycle):
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


# The item encoding has its own module; the record's names stay importable from here. Imported
# last, as it builds on the record (the package imports this module first, see __init__).
from agentjobs.record_items import (  # noqa: E402
    MalformedRecord,
    StoredJob,
    from_item,
    read_item,
    to_item,
)

__all__ = [
    "ATTENTION_PENDING",
    "INLINE_RESULT_LIMIT",
    "NOTIFY_ERROR",
    "JobError",
    "JobLifecycle",
    "JobRecord",
    "MalformedRecord",
    "Progress",
    "StoredJob",
    "from_item",
    "new_job_id",
    "read_item",
    "request_fingerprint",
    "to_item",
    "visible_to",
]
