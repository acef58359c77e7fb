"""A resumable job's kept state: its input, stored at submit, and what a resume reads back and
checks (its record, its input, its last checkpoint)."""

from __future__ import annotations

import logging
from typing import Any

from agentjobs import schema
from agentjobs.agent.adapters import AgentAdapters
from agentjobs.agent.declarations import JobSpec
from agentjobs.agent.stored_answers import RETRY_MESSAGE, unknown_job_answer
from agentjobs.protocol import ErrorCode, ProtocolError, SubmitRequest, encode_json, utc_now
from agentjobs.record import JobRecord, visible_to
from agentjobs.store import StoreError

log = logging.getLogger(__name__)


def keep_input(
    adapters: AgentAdapters, record: JobRecord, request: SubmitRequest
) -> JobRecord | None:
    """Store a resumable job's input, before its record, so that a record of a resumable
    job always has its input; the existing record instead when a retried submit (same
    client_token) finds one, whose input is then left as it is. StoreError when S3 or the
    table cannot be reached."""
    if request.client_token is not None:
        try:
            existing = adapters.jobs().get(record.job_id)
        except ValueError as exc:
            raise StoreError("the job's existing record could not be read") from exc
        if existing is not None:
            return existing
    adapters.results().put_input(
        record.job_id,
        {
            "job_id": record.job_id,
            "kind": record.kind,
            "input": request.input,
            "max_runtime_s": record.max_runtime_s,
        },
    )
    return None


def drop_input(adapters: AgentAdapters, job_id: str) -> None:
    # The submit changes nothing when it fails: the input of a job never recorded goes.
    try:
        adapters.results().delete_input(job_id)
    except StoreError as exc:
        log.warning("job %s: input of an unrecorded job left in S3: %s", job_id, exc)


def resumable_record(adapters: AgentAdapters, job_id: str, session_id: str) -> JobRecord | None:
    """The job's record when this session may resume it; None when it is not this
    session's to run. ProtocolError when it has ended or is not resumable."""
    try:
        record = adapters.jobs().get(job_id)
    except StoreError as exc:
        log.warning("job %s: record unreadable for resume: %s", job_id, exc)
        raise ProtocolError(ErrorCode.JOB_STORE_UNAVAILABLE, RETRY_MESSAGE) from exc
    except ValueError:
        log.error("job %s: its record is malformed; it cannot be resumed", job_id)
        raise ProtocolError(
            ErrorCode.RESUME_FAILED,
            f"job {job_id} cannot be resumed: its record in the job table is not readable",
        ) from None
    if record is None or not visible_to(record, session_id, None):
        return None
    if record.is_terminal:
        raise ProtocolError(
            ErrorCode.JOB_ENDED, f"job {job_id} has ended ({record.status}); nothing to resume"
        )
    if not record.resumable:
        raise ProtocolError(ErrorCode.NOT_RESUMABLE, not_resumable(record))
    if record.active_session_id != session_id:
        return None
    return record


def stored_params(adapters: AgentAdapters, record: JobRecord, spec: JobSpec) -> Any:
    where = schema.input_key(record.job_id)
    try:
        stored = adapters.results().get_input(record.job_id)
    except StoreError as exc:
        log.warning("job %s: input unreadable for resume: %s", record.job_id, exc)
        raise ProtocolError(ErrorCode.JOB_STORE_UNAVAILABLE, RETRY_MESSAGE) from exc
    job_input = stored.get("input") if stored is not None else None
    if stored is None or stored.get("job_id") != record.job_id or not isinstance(job_input, dict):
        raise ProtocolError(
            ErrorCode.RESUME_FAILED,
            f"job {record.job_id} cannot be resumed: its stored input ({where} in the "
            "results bucket) is missing or unreadable",
        )
    try:
        return spec.parse(job_input)
    except ProtocolError as exc:
        raise ProtocolError(
            ErrorCode.RESUME_FAILED,
            f"job {record.job_id} cannot be resumed: its stored input is no longer valid "
            f"for job {spec.name}: {exc.message}",
        ) from None


def from_checkpoint(adapters: AgentAdapters, record: JobRecord) -> tuple[JobRecord, str | None]:
    """The record as the resumed attempt starts it (the attempt the checkpoint object
    counted, if more), and the last checkpoint's state, encoded."""
    try:
        checkpoint = adapters.results().get_checkpoint(record.job_id)
    except StoreError as exc:
        log.warning("job %s: checkpoint unreadable for resume: %s", record.job_id, exc)
        raise ProtocolError(ErrorCode.JOB_STORE_UNAVAILABLE, RETRY_MESSAGE) from exc
    live = record.evolve(updated_at=utc_now())
    if checkpoint is None or checkpoint.get("job_id") != record.job_id:
        return live, None
    counted = checkpoint.get("attempt")
    if isinstance(counted, int) and not isinstance(counted, bool) and counted > live.attempt:
        live = live.evolve(attempt=min(counted, live.max_attempts))
    if "state" not in checkpoint:
        return live, None
    at = checkpoint.get("at")
    if isinstance(at, str):
        live = live.evolve(checkpoint_at=at)
    return live, encode_json(checkpoint["state"])


def not_resumable(record: JobRecord) -> str:
    return (
        f"job {record.job_id} is a {record.kind} job, which is not declared resumable; only a "
        "job declared @app.job(..., resumable=True) can be resumed"
    )


def not_here(job_id: str) -> dict[str, Any]:
    return unknown_job_answer(
        job_id, "no job with this id in this session or the job table that this caller may read"
    )
