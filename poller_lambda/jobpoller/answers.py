"""Read an agent's answer to `result` (or `resume`) into what the poller does next (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agentjobs.limits import MAX_ATTEMPTS, cap_job_text
from agentjobs.protocol import TERMINAL_STATUSES, ErrorCode, JobStatus, encode_json, parse_time
from agentjobs.record import JobError, Progress


@dataclass(frozen=True)
class StillRunning:
    """The job is running; here is how far it has come. A resumable job's answer also says
    which attempt runs, when it last checkpointed, and when its process started (each None
    when absent or malformed)."""

    progress: Progress
    attempt: int | None = None
    checkpoint_at: str | None = None
    session_started_at: str | None = None


@dataclass(frozen=True)
class Finished:
    """The job ended in the agent (or its stored outcome says so). `attempt` is the attempt
    that ended (None when the answer does not say)."""

    status: JobStatus
    finished_at: str | None
    progress: Progress
    error: JobError | None = None
    result: Any = None
    has_result: bool = False
    result_uri: str | None = None
    attempt: int | None = None


@dataclass(frozen=True)
class NotKnown:
    """The process does not run the job: its session was recycled or stopped (the agent
    answered UNKNOWN, or RUNNING from its stores with `"live": false`)."""


@dataclass(frozen=True)
class Unusable:
    """The answer cannot be acted on; `reason` says why (logged, counted, retried)."""

    reason: str


Answer = StillRunning | Finished | NotKnown | Unusable

_AGENT_STATUSES = frozenset(s.value for s in JobStatus)


def read_answer(body: bytes, job_id: str) -> Answer:
    """Decode the agent's answer bytes about `job_id`."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: deep nesting
        return Unusable(f"the answer is not JSON ({len(body)} bytes)")
    return read_answer_object(value, job_id)


def read_answer_object(value: object, job_id: str) -> Answer:
    """Interpret a decoded answer (or a stored outcome, which has the same shape)."""
    if not isinstance(value, dict):
        return Unusable(f"the answer is a JSON {type(value).__name__}, not an object")
    if "status" not in value:
        return _without_status(value)
    answered_id = value.get("job_id")
    if answered_id is not None and answered_id != job_id:
        shown = cap_job_text(str(answered_id), 80)
        return Unusable(f"the answer is about job {shown}, not {job_id}")
    status = value["status"]
    if not isinstance(status, str) or status not in _AGENT_STATUSES:
        return Unusable(f"unknown status {str(status)[:40]!r}")
    progress = Progress.from_wire(value.get("progress"))
    if status in (JobStatus.UNKNOWN, JobStatus.RUNNING):
        # From its stores, the agent says RUNNING with live false for a record no process of
        # the session runs: polled in its own session, the job's process is gone (lost).
        lost = status == JobStatus.UNKNOWN or value.get("live") is False
        return NotKnown() if lost else _running(progress, value)
    return _finished(JobStatus(status), progress, value)


@dataclass(frozen=True)
class Resumed:
    """The fresh session took the job: it runs it (`running`), or has already ended it there
    (`running` None: its outcome is collected with `result`)."""

    running: StillRunning | None


@dataclass(frozen=True)
class ResumeRefused:
    """The agent refused to resume the job for a reason that asking again cannot cure."""

    error: JobError


ResumeAnswer = Resumed | ResumeRefused | Unusable

PERMANENT_RESUME_ERRORS = frozenset(
    {
        ErrorCode.NOT_RESUMABLE,
        ErrorCode.RESUME_FAILED,
        ErrorCode.JOB_ENDED,
        ErrorCode.UNKNOWN_KIND,
        ErrorCode.KIND_UNAVAILABLE,
        ErrorCode.INVALID_INPUT,
    }
)
"""Refusals of `resume` that can never succeed: the job ends FAILED with the agent's error."""


def read_resume_answer(body: bytes, job_id: str) -> ResumeAnswer:
    """Decode the agent's answer to `{"action": "resume", "job_id"}` in a fresh session."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Unusable(f"the answer to resume is not JSON ({len(body)} bytes)")
    if isinstance(value, dict) and "status" not in value:
        error = JobError.from_wire(value.get("error"))
        if error is not None and error.code in PERMANENT_RESUME_ERRORS:
            return ResumeRefused(error)
    status = value.get("status") if isinstance(value, dict) else None
    ended = isinstance(status, str) and status in _TERMINAL_NAMES
    if ended and isinstance(value, dict) and value.get("job_id") == job_id:
        # A resume sent again after the job ended in the fresh session is answered as its
        # status, without the result: taken, and collected by the next `result`.
        return Resumed(running=None)
    answer = read_answer_object(value, job_id)
    if isinstance(answer, StillRunning | Finished):
        return Resumed(answer if isinstance(answer, StillRunning) else None)
    return (
        Unusable("the fresh session does not run the job")
        if isinstance(answer, NotKnown)
        else answer
    )


def attempt_of(value: object) -> int | None:
    """An attempt number as an answer or a stored object gives it; None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPTS:
        return None
    return value


_TERMINAL_NAMES = frozenset(str(s) for s in TERMINAL_STATUSES)
_TIME_CHARS = len("2026-01-01T00:00:00.000000+00:00")


def time_of(value: object) -> str | None:
    """A protocol time string as an agent gave it, when it is one (short, parseable, with a
    time zone); None otherwise."""
    if not isinstance(value, str) or not value or len(value) > _TIME_CHARS:
        return None
    try:
        moment = parse_time(value)
    except ValueError:
        return None
    return value if moment.tzinfo is not None else None


def _running(progress: Progress, value: dict[str, Any]) -> StillRunning:
    return StillRunning(
        progress,
        attempt=attempt_of(value.get("attempt")),
        checkpoint_at=time_of(value.get("checkpoint_at")),
        session_started_at=time_of(value.get("session_started_at")),
    )


def _without_status(value: dict[str, Any]) -> Answer:
    error = JobError.from_wire(value.get("error"))
    if error is None:
        return Unusable("the answer has neither status nor error")
    if error.code == ErrorCode.UNKNOWN_JOB:
        return NotKnown()
    return Unusable(f"the agent answered error {error.code}: {error.message[:200]}")


def _finished(status: JobStatus, progress: Progress, value: dict[str, Any]) -> Answer:
    finished = Finished(
        status=status,
        finished_at=time_of(value.get("finished_at")),
        progress=progress,
        error=JobError.from_wire(value.get("error")),
        attempt=attempt_of(value.get("attempt")),
    )
    if status == JobStatus.SUCCEEDED:
        return _with_result(finished, value)
    if status == JobStatus.FAILED and finished.error and finished.error.code == ErrorCode.TIMED_OUT:
        # The agent stops a job at its own deadline and calls it FAILED; the table keeps
        # one status for "ran too long" whoever noticed first.
        return _evolve(finished, status=JobStatus.TIMED_OUT)
    if status == JobStatus.FAILED and finished.error is None:
        return _evolve(finished, error=JobError.of(ErrorCode.JOB_FAILED, "no reason given"))
    return finished


def _with_result(finished: Finished, value: dict[str, Any]) -> Answer:
    uri = value.get("result_uri")
    if uri is not None:
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            return Unusable(f"result_uri {str(uri)[:80]!r} is not an s3:// URI")
        return _evolve(finished, result_uri=uri)
    if "result" not in value:
        return Unusable("a SUCCEEDED answer without result or result_uri")
    try:
        encode_json(value["result"]).encode()
    except UnicodeEncodeError:  # a lone surrogate: JSON can carry it, UTF-8 cannot
        return Unusable("the result holds text that is not UTF-8 (a lone surrogate)")
    except ValueError:  # NaN or Infinity: Python's json reads them, the record cannot hold them
        return Unusable("the result holds NaN or Infinity, which JSON does not allow")
    return _evolve(finished, result=value["result"], has_result=True)


def _evolve(finished: Finished, **changes: Any) -> Finished:
    fields = {**finished.__dict__, **changes}
    return Finished(**fields)
