"""Read an agent's answer to `{"action": "result"}` into what the poller does next (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agentjobs.limits import cap_job_text
from agentjobs.protocol import ErrorCode, JobStatus, encode_json
from agentjobs.record import JobError, Progress


@dataclass(frozen=True)
class StillRunning:
    """The job is running; here is how far it has come."""

    progress: Progress


@dataclass(frozen=True)
class Finished:
    """The job ended in the agent (or its stored outcome says so)."""

    status: JobStatus
    finished_at: str | None
    progress: Progress
    error: JobError | None = None
    result: Any = None
    has_result: bool = False
    result_uri: str | None = None


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
        return NotKnown() if lost else StillRunning(progress)
    return _finished(JobStatus(status), progress, value)


def _without_status(value: dict[str, Any]) -> Answer:
    error = JobError.from_wire(value.get("error"))
    if error is None:
        return Unusable("the answer has neither status nor error")
    if error.code == ErrorCode.UNKNOWN_JOB:
        return NotKnown()
    return Unusable(f"the agent answered error {error.code}: {error.message[:200]}")


def _finished(status: JobStatus, progress: Progress, value: dict[str, Any]) -> Answer:
    finished_at = value.get("finished_at")
    finished = Finished(
        status=status,
        finished_at=finished_at if isinstance(finished_at, str) and finished_at else None,
        progress=progress,
        error=JobError.from_wire(value.get("error")),
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
