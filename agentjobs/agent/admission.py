"""A submit's new job record and the answers a submit gets (idempotent retries included)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agentjobs.protocol import (
    MAX_RUNTIME_S,
    ErrorCode,
    JobStatus,
    ProtocolError,
    SubmitRequest,
    format_time,
    parse_time,
    utc_now,
)
from agentjobs.record import JobRecord, Progress

DEFAULT_MAX_RUNTIME_S = float(MAX_RUNTIME_S)
"""A job without `max_runtime_s` may run as long as its session can live: 8 hours."""


def new_record(
    job_id: str,
    kind: str,
    request: SubmitRequest,
    *,
    session_id: str,
    owner: str | None,
    fingerprint: str,
    retention_days: int,
    resumable: bool = False,
) -> JobRecord:
    """The RUNNING record a submit writes before any work starts."""
    submitted_at = utc_now()
    max_runtime_s = request.max_runtime_s or DEFAULT_MAX_RUNTIME_S
    submitted = parse_time(submitted_at)
    return JobRecord(
        job_id=job_id,
        session_id=session_id,
        kind=kind,
        status=JobStatus.RUNNING,
        submitted_at=submitted_at,
        updated_at=submitted_at,
        max_runtime_s=max_runtime_s,
        deadline_at=format_time(submitted + timedelta(seconds=max_runtime_s)),
        progress=Progress(0.0, "accepted"),
        client_token=request.client_token,
        owner=owner,
        expires_at=int((submitted + timedelta(days=retention_days)).timestamp()),
        request_fingerprint=fingerprint,
        resumable=resumable,
        attempt=1,
        max_attempts=request.max_attempts,
    )


def check_durability(kind: str, resumable: bool, request: SubmitRequest) -> None:
    """Refuse (INVALID_INPUT) what only a resumable job may ask for: more than one attempt, or a
    max_runtime_s past the 8-hour session cap."""
    if resumable:
        return
    if request.max_attempts != 1:
        raise ProtocolError(
            ErrorCode.INVALID_INPUT,
            f"'max_attempts' must be 1 for job {kind}, which is not declared resumable; got "
            f"{request.max_attempts} (only a job declared @app.job(..., resumable=True) is "
            "tried again)",
        )
    if request.max_runtime_s is not None and request.max_runtime_s > MAX_RUNTIME_S:
        raise ProtocolError(
            ErrorCode.INVALID_INPUT,
            f"'max_runtime_s' must be at most {MAX_RUNTIME_S} (8 hours, AgentCore's session cap) "
            f"for job {kind}, which is not declared resumable; got {request.max_runtime_s:g} "
            "(only a job declared resumable=True outlives its session)",
        )


def idempotent_answer(record: JobRecord, fingerprint: str) -> dict[str, Any]:
    """The answer to a submit whose client_token names an existing job: that job, when the
    request is the same one; records from before fingerprints were kept count as the same."""
    if record.request_fingerprint not in (None, fingerprint):
        raise ProtocolError(
            ErrorCode.IDEMPOTENCY_MISMATCH,
            "this client_token was already used for a different request (kind, input, "
            "max_runtime_s or max_attempts differ) and nothing was started; use a new "
            "client_token for a new job, or repeat the first request exactly to get its job",
        )
    return submit_answer(record)


def submit_answer(record: JobRecord) -> dict[str, Any]:
    """What a submit answers: the job's id, session, status, kind and submission time."""
    return {
        "job_id": record.job_id,
        "session_id": record.session_id,
        "status": str(record.status),
        "kind": str(record.kind),
        "submitted_at": record.submitted_at,
    }
