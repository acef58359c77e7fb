"""The wire protocol between callers and the agent: requests, answers, statuses, error codes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from agentjobs.limits import MAX_CLIENT_TOKEN_CHARS, MAX_INPUT_BYTES, MAX_JOB_ID_CHARS

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


class JobKind(StrEnum):
    """The kinds of work the agent knows (docs/protocol.md describes each input)."""

    SYNTHETIC = "synthetic"
    DATA_REPORT = "data_report"
    AGENT = "agent"


DEFAULT_KIND = JobKind.AGENT


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
    INTERNAL_ERROR = "INTERNAL_ERROR"
    # Codes carried by a finished job's `error`:
    JOB_FAILED = "JOB_FAILED"
    JOB_CRASHED = "JOB_CRASHED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    SESSION_LOST = "SESSION_LOST"
    POLL_FAILED = "POLL_FAILED"
    RESULT_MISSING = "RESULT_MISSING"
    RESULT_REFUSED = "RESULT_REFUSED"
    """The agent's result is not this job's own result object, or contradicts the stored one."""
    RECORD_REFUSED = "RECORD_REFUSED"
    """The job table refused the job's outcome as the agent answered it (too large, or a
    value it does not accept); the record keeps this error instead."""
    NOTIFY_REFUSED = "NOTIFY_REFUSED"
    """SNS refused every form of the job's notification (in the record's `notify_error`)."""


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


@dataclass(frozen=True)
class SubmitRequest:
    """A validated `submit`: what to run and how it is tracked."""

    kind: JobKind
    input: dict[str, Any] = field(default_factory=dict)
    client_token: str | None = None
    max_runtime_s: float | None = None


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
_PING_FIELDS = frozenset({"method", "payload"})

_SUBMIT_FIELDS = frozenset({"action", "kind", "input", "client_token", "max_runtime_s"})
_QUERY_FIELDS = frozenset({"action", "job_id"})


def parse_request(payload: object) -> SubmitRequest | JobQuery | PingRequest:
    """Validate a decoded payload; raise ProtocolError saying what is wrong and what is expected."""
    if not isinstance(payload, dict):
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            'expected a JSON object such as {"action": "submit", ...}; '
            f"got {_json_type(payload)}",
        )
    if "action" not in payload and "method" in payload:
        return _parse_ping(payload)
    if "action" not in payload:
        return _parse_prompt(payload)
    action = payload["action"]
    if not isinstance(action, str) or action not in Action.__members__.values():
        choices = ", ".join(a.value for a in Action)
        raise ProtocolError(
            ErrorCode.UNKNOWN_ACTION,
            f"'action' must be one of {choices}; got {_describe(action)}",
        )
    if action == Action.SUBMIT:
        return _parse_submit(payload)
    _reject_unknown_fields(payload, _QUERY_FIELDS, action)
    job_id = payload.get("job_id")
    if job_id is not None:
        job_id = _require_text("job_id", job_id, MAX_JOB_ID_CHARS)
    return JobQuery(action=Action(action), job_id=job_id)


def _parse_ping(payload: dict[str, Any]) -> PingRequest:
    if payload["method"] != PING_METHOD:
        raise ProtocolError(
            ErrorCode.UNKNOWN_ACTION,
            f"'method' must be \"{PING_METHOD}\" (or send an 'action': submit, status, result or "
            f"cancel); got {_describe(payload['method'])}",
        )
    _reject_unknown_fields(payload, _PING_FIELDS, "ping")
    if "payload" in payload and not isinstance(payload["payload"], dict):
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"'payload' of a ping must be a JSON object; got {_json_type(payload['payload'])}",
        )
    return PingRequest()


def _parse_prompt(payload: dict[str, Any]) -> SubmitRequest:
    if "prompt" not in payload:
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            "expected 'action' (submit, status, result or cancel) or a 'prompt' string",
        )
    _reject_unknown_fields(payload, frozenset({"prompt"}), "prompt")
    prompt = _require_text("prompt", payload["prompt"], MAX_INPUT_BYTES)
    return SubmitRequest(kind=DEFAULT_KIND, input={"prompt": prompt})


def _parse_submit(payload: dict[str, Any]) -> SubmitRequest:
    _reject_unknown_fields(payload, _SUBMIT_FIELDS, "submit")
    kind = payload.get("kind", DEFAULT_KIND.value)
    if not isinstance(kind, str) or kind not in JobKind.__members__.values():
        choices = ", ".join(k.value for k in JobKind)
        raise ProtocolError(
            ErrorCode.UNKNOWN_KIND, f"'kind' must be one of {choices}; got {_describe(kind)}"
        )
    job_input = payload.get("input", {})
    if not isinstance(job_input, dict):
        raise ProtocolError(
            ErrorCode.INVALID_INPUT, f"'input' must be a JSON object; got {_json_type(job_input)}"
        )
    try:
        size = len(encode_json(job_input).encode())
    except (TypeError, ValueError) as exc:
        raise ProtocolError(ErrorCode.INVALID_INPUT, "'input' must be plain JSON") from exc
    if size > MAX_INPUT_BYTES:
        raise ProtocolError(
            ErrorCode.INPUT_TOO_LARGE,
            f"'input' is {size} bytes; at most {MAX_INPUT_BYTES} are accepted inline, "
            "pass larger data as an s3:// URI",
        )
    token = payload.get("client_token")
    if token is not None:
        token = _require_text("client_token", token, MAX_CLIENT_TOKEN_CHARS)
    max_runtime = payload.get("max_runtime_s")
    if max_runtime is not None:
        max_runtime = _require_seconds("max_runtime_s", max_runtime, MAX_RUNTIME_S)
    return SubmitRequest(
        kind=JobKind(kind), input=job_input, client_token=token, max_runtime_s=max_runtime
    )


def _reject_unknown_fields(payload: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(str(k) for k in payload if k not in allowed)
    if unknown:
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"unknown field(s) {', '.join(unknown)} for {what}; "
            f"expected only {', '.join(sorted(allowed))}",
        )


def _require_text(name: str, value: object, max_chars: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"'{name}' must be a non-empty string; got {_describe(value)}",
        )
    if len(value) > max_chars:
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST, f"'{name}' must be at most {max_chars} characters"
        )
    return value


def _require_seconds(name: str, value: object, maximum: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= maximum
    ):
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"'{name}' must be a number of seconds above 0 and at most {maximum:g}; "
            f"got {_describe(value)}",
        )
    return float(value)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _describe(value: object) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return json.dumps(shown)
    return _json_type(value)
