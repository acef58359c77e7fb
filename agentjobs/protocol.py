"""The wire protocol between callers and the agent: requests, answers, statuses, error codes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from agentjobs.limits import MAX_CLIENT_TOKEN_CHARS, MAX_INPUT_BYTES, MAX_KIND_CHARS

# The deployed agent answers through AgentCore, where a 4xx/5xx from the agent reaches
# the caller as an opaque RuntimeClientError. So every answer is HTTP 200 and a JSON
# object; errors travel as {"error": {"code", "message"}}.

MAX_RUNTIME_S = 8 * 60 * 60
"""AgentCore caps a session, and so any job in it, at 8 hours."""


class JobStatus(StrEnum):
    """Where a job is: RUNNING to CANCELLED come from the agent, TIMED_OUT, LOST from the poller."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    LOST = "LOST"
    UNKNOWN = "UNKNOWN"
    """Answer-only: the process does not know the job (its session was recycled)."""

    @property
    def is_terminal(self) -> bool:
        """True for the statuses a job never leaves."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.TIMED_OUT,
        JobStatus.LOST,
    }
)


class Action(StrEnum):
    """What a request asks the agent to do."""

    SUBMIT = "submit"
    STATUS = "status"
    RESULT = "result"
    CANCEL = "cancel"
    RESUME = "resume"
    """The poller starts a resumable job again in the fresh session it assigned it."""
    SUSPEND = "suspend"
    """The poller asks a session near its max lifetime to stop a resumable job without ending
    it (a last checkpoint, no outcome), before resuming it in a fresh session."""


JOB_NAME_PATTERN = re.compile(rf"[A-Za-z][A-Za-z0-9_.-]{{0,{MAX_KIND_CHARS - 1}}}")
"""A job's name, the `kind` of a submit: a letter, then letters, digits, '_', '.' or '-', at
most MAX_KIND_CHARS in all. Kinds are registered by each agent, not enumerated here: the
protocol accepts any well-formed name, and the agent answers an unknown one with its own."""

JOB_NAME_RULE = (
    f"a letter, then letters, digits, '_', '.' or '-', at most {MAX_KIND_CHARS} characters"
)


def job_name_problem(name: object) -> str | None:
    """Why `name` is not a well-formed job name, or None when it is one."""
    if not isinstance(name, str):
        return f"a job name must be a string ({JOB_NAME_RULE}); got {json_type_name(name)}"
    if len(name) > MAX_KIND_CHARS:
        return f"a job name must be at most {MAX_KIND_CHARS} characters; got {len(name)}"
    if not JOB_NAME_PATTERN.fullmatch(name):
        return f"a job name must be {JOB_NAME_RULE}; got {describe_value(name)}"
    return None


class ErrorCode(StrEnum):
    """Stable error codes; callers branch on these, never on messages."""

    INVALID_REQUEST = "INVALID_REQUEST"
    UNKNOWN_ACTION = "UNKNOWN_ACTION"
    UNKNOWN_KIND = "UNKNOWN_KIND"
    INVALID_INPUT = "INVALID_INPUT"
    INPUT_TOO_LARGE = "INPUT_TOO_LARGE"
    UNKNOWN_JOB = "UNKNOWN_JOB"
    JOB_STORE_UNAVAILABLE = "JOB_STORE_UNAVAILABLE"
    KIND_UNAVAILABLE = "KIND_UNAVAILABLE"
    IDEMPOTENCY_MISMATCH = "IDEMPOTENCY_MISMATCH"
    """A client_token used before for a different request (kind, input or max_runtime_s)."""
    TOO_MANY_JOBS = "TOO_MANY_JOBS"
    """The session already runs as many jobs at once as the agent allows."""
    INTERNAL_ERROR = "INTERNAL_ERROR"
    # Codes carried by a finished job's `error`:
    JOB_FAILED = "JOB_FAILED"
    JOB_CRASHED = "JOB_CRASHED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    SESSION_LOST = "SESSION_LOST"
    POLL_FAILED = "POLL_FAILED"
    RESULT_MISSING = "RESULT_MISSING"
    RESULT_NOT_JSON = "RESULT_NOT_JSON"
    """The job returned a value JSON cannot carry; nothing of it was stored."""
    RESULT_REFUSED = "RESULT_REFUSED"
    """The agent's result is not this job's own result object, or contradicts the stored one."""
    RECORD_REFUSED = "RECORD_REFUSED"
    """The job table refused the job's outcome as the agent answered it (too large, or a
    value it does not accept); the record keeps this error instead."""
    NOTIFY_REFUSED = "NOTIFY_REFUSED"
    """SNS refused every form of the job's notification (in the record's `notify_error`)."""
    NOT_RESUMABLE = "NOT_RESUMABLE"
    """A resume or suspend of a job whose kind is not declared resumable."""
    JOB_ENDED = "JOB_ENDED"
    """A resume of a job that has already ended: there is nothing to resume."""
    RESUME_FAILED = "RESUME_FAILED"
    """A resumable job could not be started again (its stored input is missing or unreadable)."""


class ProtocolError(Exception):
    """A request the agent refuses; becomes an error answer, never a 4xx/5xx."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def answer(self) -> dict[str, Any]:
        """The error as a wire answer."""
        return error_answer(self.code, self.message)


def error_answer(code: ErrorCode, message: str) -> dict[str, Any]:
    """An answer to a request that could not be served: `error` and no `status`."""
    return {"error": {"code": str(code), "message": message}}


def utc_now() -> str:
    """The current time as the protocol writes it: ISO 8601, UTC, milliseconds."""
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    """A datetime as the protocol writes it."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_time(text: str) -> datetime:
    """A protocol time string back to an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def encode_json(value: Any) -> str:
    """The one JSON encoding used for results and records: compact, UTF-8, no NaN."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


SESSION_ID_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
USER_ID_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"
"""The caller's user id: the job's `owner`. AgentCore accepts it only from callers allowed
`bedrock-agentcore:InvokeAgentRuntimeForUser`, so it is not the caller's free choice."""

JOB_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
"""The form of every job id the agent mints (`record.new_job_id`: a uuid's 32 hex digits). Ids
name S3 keys and table items, so nothing else is looked up."""


@dataclass(frozen=True)
class SubmitRequest:
    """A validated `submit`: what to run and how it is tracked."""

    kind: str | None
    """The job's name; None asks for the agent's default job."""
    input: dict[str, Any] = field(default_factory=dict)
    client_token: str | None = None
    max_runtime_s: float | None = None
    """Up to MAX_RUNTIME_S, or MAX_DURABLE_RUNTIME_S for a resumable kind (the agent checks)."""
    max_attempts: int = 1
    """How many tries a resumable job gets (1..MAX_ATTEMPTS); more than 1 only for a resumable
    kind (the agent checks, since only it knows its kinds)."""


@dataclass(frozen=True)
class JobQuery:
    """A validated `status`, `result` or `cancel`; no job id means the most recent job."""

    action: Action
    job_id: str | None = None


@dataclass(frozen=True)
class PingRequest:
    """`{"method": "ping"}`, the form AWS's async sample client polls a session with: answered
    with the session's health and jobs. Its optional `payload` object is accepted and ignored."""


PING_METHOD = "ping"


@dataclass(frozen=True)
class Caller:
    """Who asks, from the invocation's headers: None for a header that was not sent."""

    session_id: str | None
    owner: str | None


@dataclass(frozen=True)
class S3Location:
    """A bucket and an object key, as S3 allows them."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        """The location as an s3:// URI."""
        return f"s3://{self.bucket}/{self.key}"


def json_type_name(value: object) -> str:
    """How a message names the JSON type of `value`: "an object", "a number", "null"..."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def describe_value(value: object) -> str:
    """How a message shows a value it refuses: a string quoted (cut at 40), else its type."""
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return json.dumps(shown)
    return json_type_name(value)


# The parsers build on the names above, so they are imported last; `agentjobs.protocol` stays
# the one import for the whole wire protocol.
from agentjobs.protocol_parsing import parse_caller, parse_request, parse_s3_uri  # noqa: E402

__all__ = [
    "JOB_ID_PATTERN",
    "JOB_NAME_PATTERN",
    "JOB_NAME_RULE",
    "MAX_CLIENT_TOKEN_CHARS",
    "MAX_INPUT_BYTES",
    "MAX_RUNTIME_S",
    "PING_METHOD",
    "SESSION_ID_HEADER",
    "TERMINAL_STATUSES",
    "USER_ID_HEADER",
    "Action",
    "Caller",
    "ErrorCode",
    "JobQuery",
    "JobStatus",
    "PingRequest",
    "ProtocolError",
    "S3Location",
    "SubmitRequest",
    "describe_value",
    "encode_json",
    "error_answer",
    "format_time",
    "job_name_problem",
    "json_type_name",
    "parse_caller",
    "parse_request",
    "parse_s3_uri",
    "parse_time",
    "utc_now",
]
