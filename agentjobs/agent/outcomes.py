"""How a job ends: its outcome made durable (a large result, then the outcome, in S3), signalled."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from agentjobs.agent.adapters import AgentAdapters, with_store_retries
from agentjobs.agent.declarations import NOT_JSON_MESSAGE
from agentjobs.limits import MAX_ERROR_MESSAGE_CHARS, cap_job_text
from agentjobs.protocol import ErrorCode, JobStatus, encode_json, utc_now
from agentjobs.record import INLINE_RESULT_LIMIT, JobError, JobRecord, Progress
from agentjobs.signals import CompletionSignal
from agentjobs.store import StoreError

log = logging.getLogger(__name__)

STORE_ATTEMPTS = 4
STORE_FIRST_DELAY_S = 0.25

T = TypeVar("T")


class StopReason(StrEnum):
    """Why a job was asked to stop before it ended by itself."""

    CANCEL = "cancel"
    DEADLINE = "deadline"
    SHUTDOWN = "shutdown"
    SUSPEND = "suspend"
    """The poller moves the (resumable) job to a fresh session: no outcome, no signal."""
    MOVED = "moved"
    """The job's record gives it to another session (or ended it): this process lets go."""

    @property
    def keeps_job_open(self) -> bool:
        """Whether a job stopped for this reason has no end here: no outcome is stored and no
        completion signalled, since it ends (or resumes) elsewhere."""
        return self in _OPEN_ENDED


_OPEN_ENDED = frozenset({StopReason.SHUTDOWN, StopReason.SUSPEND, StopReason.MOVED})


@dataclass
class Outcome:
    """How a job's work ended, before it is stored."""

    status: JobStatus
    value: Any = None
    error: JobError | None = None


CRASHED = Outcome(
    JobStatus.FAILED,
    error=JobError.of(ErrorCode.JOB_CRASHED, "the job failed unexpectedly; the agent logged why"),
)
NOT_JSON = JobError.of(ErrorCode.RESULT_NOT_JSON, NOT_JSON_MESSAGE)


def job_failed(message: object) -> JobError:
    """A failure in the job's own words, capped and made encodable where it is stored."""
    return JobError.of(ErrorCode.JOB_FAILED, cap_job_text(str(message), MAX_ERROR_MESSAGE_CHARS))


def stopped_outcome(reason: StopReason | None, max_runtime_s: float) -> Outcome:
    """The outcome of a job that stopped because it was asked to."""
    if reason == StopReason.CANCEL:
        return Outcome(
            JobStatus.CANCELLED,
            error=JobError.of(ErrorCode.CANCELLED, "the job was cancelled on request"),
        )
    if reason == StopReason.DEADLINE:
        return Outcome(
            JobStatus.FAILED,
            error=JobError.of(
                ErrorCode.TIMED_OUT,
                f"the job ran past its max_runtime_s of {max_runtime_s:g} s and was stopped",
            ),
        )
    return Outcome(
        JobStatus.FAILED,
        error=JobError.of(ErrorCode.SESSION_LOST, "the agent shut down while the job was running"),
    )


class OutcomeWriter:
    """Writes each job's end where the poller and a re-invoked session find it."""

    def __init__(self, adapters: AgentAdapters, closing: Callable[[], bool]) -> None:
        self._adapters = adapters
        self._closing = closing

    def finish(
        self, record: JobRecord, outcome: Outcome, *, left_open: StopReason | None = None
    ) -> JobRecord:
        """The job's final record in this process. Its outcome is in S3 before this returns (a
        large result first, so the outcome can point to it), unless the job was `left_open`:
        stopped for a reason that ends or resumes it elsewhere, so nothing is stored."""
        job_id = record.job_id
        if outcome.status == JobStatus.SUCCEEDED:
            final = self._succeeded(record, outcome.value)
        else:
            final = record.evolve(status=outcome.status, error=outcome.error)
        now = utc_now()
        final = final.evolve(finished_at=now, updated_at=now)
        if left_open is not None:
            # Not "finished FAILED": the job goes on (or ends) in a later session.
            log.info("job %s stopped here (%s); its end is not this session's", job_id, left_open)
            return final
        answer = final.to_answer(with_outcome=True)
        try:
            self._with_retries(job_id, lambda: self._adapters.results().put_outcome(answer))
        except StoreError as exc:
            log.error("job %s: outcome could not be stored durably: %s", job_id, exc)
        log.info("job %s finished %s", job_id, final.status)
        return final

    def signal(self, record: JobRecord, *, interrupted: bool = False) -> None:
        """Tell the poller the job ended (the fast completion path), after its outcome is
        stored and its task completed; `interrupted`: it did not end but lost its process
        (a resumable job at shutdown), so that the poller resumes it now. Best effort: a lost
        signal costs the schedule's latency, never the job."""
        try:
            queue = self._adapters.completions()
            if queue is not None:
                queue.send(
                    CompletionSignal(
                        job_id=record.job_id,
                        session_id=record.session_id,
                        status=str(JobStatus.RUNNING if interrupted else record.status),
                        finished_at=None if interrupted else record.finished_at,
                    )
                )
        except Exception as exc:
            log.warning(
                "job %s (session %s): completion signal not sent, the poller's schedule will "
                "collect it: %s",
                record.job_id,
                record.session_id,
                exc,
            )

    def _succeeded(self, record: JobRecord, value: Any) -> JobRecord:
        done = Progress(100.0, "done")
        try:
            encoded = encode_json(value).encode()
        except (TypeError, ValueError):
            log.error("job %s returned a result that is not plain JSON", record.job_id)
            return record.evolve(status=JobStatus.FAILED, error=NOT_JSON)
        if len(encoded) <= INLINE_RESULT_LIMIT:
            return record.evolve(status=JobStatus.SUCCEEDED, result=value, progress=done)
        try:
            uri = self._with_retries(
                record.job_id, lambda: self._adapters.results().put_result(record.job_id, encoded)
            )
        except StoreError as exc:
            log.error("job %s: large result could not be stored: %s", record.job_id, exc)
            return record.evolve(
                status=JobStatus.FAILED,
                error=JobError.of(
                    ErrorCode.RESULT_MISSING,
                    f"the job succeeded but its {len(encoded)}-byte result could not be "
                    "stored in the results bucket",
                ),
            )
        return record.evolve(status=JobStatus.SUCCEEDED, result_uri=uri, progress=done)

    def _with_retries(self, job_id: str, call: Callable[[], T]) -> T:
        return with_store_retries(
            job_id,
            call,
            attempts=STORE_ATTEMPTS,
            first_delay_s=STORE_FIRST_DELAY_S,
            give_up=self._closing,
        )
