"""Where a job's tries stand: the attempt running, whether another may start, stale answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from agentjobs.record import JobRecord, StoredJob
from agentjobs.store import ResultStore
from jobpoller.answers import Finished, attempt_of, time_of


@dataclass(frozen=True)
class Attempts:
    """Where a resumable job's tries stand: the attempt running (the later of the record's and
    the checkpoint object's: the agent counts retries in its own process there) and when its
    last checkpoint was taken."""

    current: int
    checkpoint_at: str | None

    @classmethod
    def of(cls, job: JobRecord, results: ResultStore) -> Attempts:
        """The job's attempts as its record and its checkpoint object say."""
        if not job.resumable:
            return cls(job.attempt, None)
        checkpoint = results.get_checkpoint(job.job_id) or {}
        stored = attempt_of(checkpoint.get("attempt"))
        return cls(
            current=max(job.attempt, stored or 1),
            checkpoint_at=time_of(checkpoint.get("at")) or job.checkpoint_at,
        )


def may_resume(job: JobRecord, attempts: Attempts) -> bool:
    """Whether a resumable job may start another attempt: one is left and its deadline is not
    past."""
    return job.resumable and attempts.current < job.max_attempts and not is_overdue(job)


def with_attempts(message: str, job: JobRecord, attempts: Attempts) -> str:
    """`message`, saying which attempt ended, when the job was allowed more than one."""
    if job.max_attempts <= 1:
        return message
    return f"{message} (attempt {attempts.current} of {job.max_attempts}; none left)"


def later_attempt(job: StoredJob, attempt: int | None) -> int | None:
    """`attempt` when it is later than a resumable record's (to be written), else None."""
    if not isinstance(job, JobRecord) or not job.resumable:
        return None
    if attempt is None or attempt <= job.attempt:
        return None
    return attempt


def is_stale(job: StoredJob, answer: Finished) -> bool:
    """An outcome of an attempt before the record's: the job has moved on since."""
    current = job.attempt if isinstance(job, JobRecord) else 1
    return answer.attempt is not None and answer.attempt < current


def is_overdue(job: StoredJob) -> bool:
    """Whether the job is past its deadline."""
    deadline = job.deadline()
    return deadline is not None and datetime.now(UTC) > deadline
