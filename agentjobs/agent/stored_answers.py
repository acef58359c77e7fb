"""Answers about jobs this agent process does not run, from the job table and durable outcomes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from agentjobs.agent.adapters import AgentAdapters
from agentjobs.agent.settings import AgentSettings
from agentjobs.protocol import (
    TERMINAL_STATUSES,
    Action,
    ErrorCode,
    JobQuery,
    ProtocolError,
    parse_s3_uri,
    parse_time,
)
from agentjobs.protocol import JobStatus as Status
from agentjobs.record import JobError, JobRecord, Progress, visible_to
from agentjobs.store import StoreError

log = logging.getLogger(__name__)

LIVE_KEY = "live"
"""Set to false in every answer from the stores: no process of this session runs the job, so a
RUNNING answer with it means the job is running elsewhere or its session was lost."""

SESSION_JOBS_LISTED = 20
"""At most this many of a session's stored jobs are listed by `{"method": "ping"}`."""

RETRY_MESSAGE = "the job table or results bucket could not be read; retry in a few seconds"


@dataclass(frozen=True)
class StoredJob:
    """One job as the stores tell it: its record, with the durable outcome applied when the
    record is still RUNNING but the job already ended (the poller has not collected it yet)."""

    record: JobRecord

    def answer(self, action: Action) -> dict[str, Any]:
        """The answer the live process would give, marked as coming from the stores."""
        answer = self.record.to_answer(with_outcome=action != Action.STATUS)
        answer[LIVE_KEY] = False
        return answer


class StoredAnswers:
    """Reads, never writes: the poller owns every change to a record after the agent's submit."""

    def __init__(self, settings: AgentSettings, adapters: AgentAdapters) -> None:
        self._settings = settings
        self._adapters = adapters

    def answer(self, query: JobQuery, session_id: str, owner: str | None) -> dict[str, Any]:
        """Answer status, result or cancel for a job this process does not know. A cancel of a
        job that has ended answers its terminal record and changes nothing."""
        if not self._settings.jobs_table:
            return unknown_job_answer(
                query.job_id,
                "this agent process does not know the job, and the agent has no job table "
                "configured (JOBS_TABLE) to look it up in",
            )
        try:
            job = self._find(query.job_id, session_id, owner)
        except StoreError as exc:
            log.warning(
                "session %s: stores unreadable for job %s: %s", session_id, query.job_id, exc
            )
            raise ProtocolError(ErrorCode.JOB_STORE_UNAVAILABLE, RETRY_MESSAGE) from exc
        if job is not None:
            return job.answer(query.action)
        if query.job_id is None:
            return unknown_job_answer(
                None,
                "no job in this session that this caller may read, in this agent process or "
                "the job table; submit one first",
            )
        return unknown_job_answer(
            query.job_id,
            "no job with this id in this session or the job table that this caller may read",
        )

    def session_jobs(self, session_id: str, owner: str | None, known: set[str]) -> list[StoredJob]:
        """The session's newest stored jobs that this process does not know and the caller may
        read, newest first. Raises StoreError when the stores cannot be read."""
        if not self._settings.jobs_table:
            return []
        ids = self._adapters.jobs().latest_jobs_of_session(session_id, SESSION_JOBS_LISTED)
        jobs = [self._read(job_id) for job_id in ids if job_id not in known]
        return [j for j in jobs if j is not None and visible_to(j.record, session_id, owner)]

    def _find(self, job_id: str | None, session_id: str, owner: str | None) -> StoredJob | None:
        if job_id is None:
            latest = self._adapters.jobs().latest_jobs_of_session(session_id)
            if not latest:
                return None
            job_id = latest[0]
        job = self._read(job_id)
        # A job the caller may not read is answered exactly as one that does not exist, so
        # that an answer never tells whether some other caller's job id is real.
        if job is None or not visible_to(job.record, session_id, owner):
            return None
        return job

    def _read(self, job_id: str) -> StoredJob | None:
        record = self._adapters.jobs().get(job_id)
        if record is None:
            return None
        if record.status in TERMINAL_STATUSES:
            # The poller has recorded the end: the table is the authority from then on.
            return StoredJob(record)
        ended = self._outcome(record)
        return StoredJob(ended if ended is not None else record)

    def _outcome(self, record: JobRecord) -> JobRecord | None:
        if not self._settings.results_bucket:
            return None
        try:
            outcome = self._adapters.results().get_outcome(record.job_id)
        except ValueError:
            # Not JSON: no usable outcome. The poller, told RUNNING with live false, reads the
            # same object and records the job LOST.
            log.warning("job %s: stored outcome is not JSON", record.job_id)
            return None
        if outcome is None:
            return None
        return outcome_record(record, outcome)


def outcome_record(record: JobRecord, outcome: dict[str, Any]) -> JobRecord | None:
    """The record as its stored outcome ends it; None when the outcome is not a usable end of
    this job (another job's, not terminal, or a success without its result)."""
    status_text = outcome.get("status")
    if outcome.get("job_id") != record.job_id or status_text not in {
        str(s) for s in TERMINAL_STATUSES
    }:
        return None
    status = Status(status_text)
    finished_at = outcome.get("finished_at")
    ended = record.evolve(
        status=status,
        progress=Progress.from_wire(outcome.get("progress")),
        finished_at=finished_at if isinstance(finished_at, str) else record.updated_at,
        error=JobError.from_wire(outcome.get("error")),
    )
    # A resumable job's end says which try ended it and its last checkpoint, as it answered.
    attempt = outcome.get("attempt")
    if isinstance(attempt, int) and not isinstance(attempt, bool) and attempt > record.attempt:
        ended = ended.evolve(attempt=min(attempt, record.max_attempts))
    checkpoint_at = outcome.get("checkpoint_at")
    if isinstance(checkpoint_at, str) and _is_time(checkpoint_at):
        ended = ended.evolve(checkpoint_at=checkpoint_at)
    if status != Status.SUCCEEDED:
        return ended
    uri = outcome.get("result_uri")
    if isinstance(uri, str) and _is_s3_uri(uri):
        return ended.evolve(result_uri=uri)
    if "result" in outcome and uri is None:
        return ended.evolve(result=outcome["result"])
    return None


def _is_time(text: str) -> bool:
    if len(text) > len("2000-01-01T00:00:00.000Z"):
        return False
    try:
        parse_time(text)
    except ValueError:
        return False
    return True


def _is_s3_uri(uri: str) -> bool:
    try:
        parse_s3_uri(uri)
    except ValueError:
        return False
    return True


def ping_entry(record: JobRecord, *, live: bool) -> dict[str, Any]:
    """One job in the answer to `{"method": "ping"}`."""
    entry: dict[str, Any] = {
        "job_id": record.job_id,
        "kind": str(record.kind),
        "status": str(record.status),
        "submitted_at": record.submitted_at,
    }
    if record.finished_at is not None:
        entry["finished_at"] = record.finished_at
    entry[LIVE_KEY] = live
    return entry


def unknown_job_answer(job_id: str | None, message: str) -> dict[str, Any]:
    """The answer about a job no store knows: status UNKNOWN and an error."""
    return {
        "job_id": job_id,
        "status": str(Status.UNKNOWN),
        "error": {"code": str(ErrorCode.UNKNOWN_JOB), "message": message},
    }
