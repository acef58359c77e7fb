"""The running of a job: its tries on a thread or in a child process, retries with backoff,
checkpoints, progress, history events, and its end (the outcome stored, the task completed).

One module past 400 lines on purpose: these steps share one lock and one job's state, and
each hands the next its outcome; split, every piece would reach back into the others."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentjobs.agent.checkpoints import (
    CheckpointWriter,
    JobMovedError,
    encode_state,
    next_checkpoint_event_gap,
    retry_delay,
)
from agentjobs.agent.child import ChildJob, ChildOutcome, ChildWork, not_resumable_message
from agentjobs.agent.context import CheckpointError, JobFailed, JobStopped
from agentjobs.agent.declarations import call_job, plain_result
from agentjobs.agent.journal import JobJournal
from agentjobs.agent.live_job import LiveJob, TaskTracker
from agentjobs.agent.outcomes import (
    CRASHED,
    NOT_JSON,
    Outcome,
    OutcomeWriter,
    StopReason,
    job_failed,
    stopped_outcome,
)
from agentjobs.history import Event, EventType
from agentjobs.limits import MAX_ERROR_MESSAGE_CHARS, MAX_PROGRESS_MESSAGE_CHARS, cap_job_text
from agentjobs.protocol import ErrorCode, JobStatus, utc_now
from agentjobs.record import JobError, JobRecord, Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Retry:
    """A try of the job ended with one of its `retry_on` exceptions."""

    error_type: str
    message: str
    code: ErrorCode = ErrorCode.JOB_FAILED
    """The error the job ends with when no attempt is left."""


class _ThreadContext:
    """The JobContext of a job running on a thread of this process: stops are cooperative."""

    def __init__(self, executor: JobExecutor, job: LiveJob) -> None:
        self._executor = executor
        self._job = job

    @property
    def job_id(self) -> str:
        return self._job.record.job_id

    @property
    def session_id(self) -> str:
        return self._job.session_id

    @property
    def attempt(self) -> int:
        return self._job.attempt

    @property
    def resumed_state(self) -> Any:
        text = self._job.resumed_text
        return json.loads(text) if text is not None else None

    def checkpoint(self, state: Any) -> None:
        if not self._job.spec.resumable:
            raise CheckpointError(not_resumable_message(self._job.spec.name))
        self._executor.checkpoint(self._job, encode_state(state))

    def progress(self, percent: float, message: str) -> None:
        self._executor.progress(self._job, percent, message)

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            self.check_stop()
            now = time.monotonic()
            if now >= end:
                return
            self._job.stop.wait(max(min(end, self._job.deadline) - now, 0.0))

    def check_stop(self) -> None:
        if self._executor.should_stop(self._job):
            raise JobStopped


class JobExecutor:
    """Runs each job's tries until one ends it, and ends it: the outcome made durable before
    its async task completes. Shares the runner's lock, under which a job's record changes."""

    def __init__(
        self,
        lock: threading.Lock,
        tracker: TaskTracker,
        *,
        outcomes: OutcomeWriter,
        checkpoints: CheckpointWriter,
        journal: JobJournal,
        release: Callable[[str], None],
        closing: Callable[[], bool],
    ) -> None:
        self._lock = lock
        self._closing = closing
        """Whether the agent's shutdown has begun (it then signals interrupted jobs itself)."""
        self._tracker = tracker
        self._outcomes = outcomes
        self._checkpoints = checkpoints
        self._journal = journal
        self._release = release
        """Gives back the job's place in its session once it has ended."""

    def work(self, job: LiveJob) -> None:
        """The job's thread: run it, then end it (CRASHED when the running raised)."""
        outcome = CRASHED
        try:
            outcome = self._execute(job)
        except Exception:
            log.exception("job %s (session %s) crashed", job.record.job_id, job.session_id)
        finally:
            self.end(job, outcome)

    def _execute(self, job: LiveJob) -> Outcome:
        """Run the job's tries until one ends it (a `retry_on` exception with attempts and
        time left starts the next)."""
        while True:
            if self.should_stop(job):
                return self._stopped(job)
            if job.spec.in_child(job.params):
                ended = self._try_in_child(job)
            else:
                ended = self._try_in_thread(job)
            if isinstance(ended, Outcome):
                return ended
            stopped = self._retry(job, ended)
            if stopped is not None:
                return stopped

    def _try_in_thread(self, job: LiveJob) -> Outcome | _Retry:
        spec = job.spec
        try:
            value = call_job(spec.func, spec.takes_context, job.params, _ThreadContext(self, job))
        except JobStopped:
            return self._stopped(job)
        except JobFailed as exc:
            return Outcome(JobStatus.FAILED, error=job_failed(exc.message))
        except spec.retry_on as exc:
            log.warning(
                "job %s: attempt %d failed (%s)", job.record.job_id, job.attempt, type(exc).__name__
            )
            return _Retry(type(exc).__name__, str(exc))
        try:
            return Outcome(JobStatus.SUCCEEDED, value=plain_result(value))
        except (TypeError, ValueError):
            log.error(
                "job %s returned a %s, which JSON cannot carry", job.record.job_id, type(value)
            )
            return Outcome(JobStatus.FAILED, error=NOT_JSON)

    def _try_in_child(self, job: LiveJob) -> Outcome | _Retry:
        record = job.record
        work = ChildWork(
            func=job.spec.func,
            takes_context=job.spec.takes_context,
            params=job.params,
            job_id=record.job_id,
            session_id=job.session_id,
            name=job.spec.name,
            resumable=job.spec.resumable,
            retry_on=job.spec.retry_on,
            attempt=job.attempt,
            state_text=job.resumed_text,
        )
        child = ChildJob(job.spec.name, work)
        with self._lock:
            job.child = child
        try:
            ended = child.follow(
                on_progress=lambda percent, message: self.progress(job, percent, message),
                should_stop=lambda: self.should_stop(job),
                on_checkpoint=lambda text: self._checkpoint_from_child(job, text),
            )
        except JobStopped:
            return self._stopped(job)
        finally:
            with self._lock:
                job.child = None
        return self._child_ending(job, ended)

    def _child_ending(self, job: LiveJob, ended: ChildOutcome) -> Outcome | _Retry:
        if ended.retry is not None:
            return _Retry(*ended.retry)
        if ended.killed_by is not None and job.spec.resumable:
            # A resumable job's process killed from outside (not asked to stop): the try is
            # lost, not the job; the next attempt goes on from the last checkpoint.
            log.warning("job %s: %s", job.record.job_id, ended.crashed)
            return _Retry(
                "ProcessKilled",
                f"{ended.crashed}: killed by signal {ended.killed_by}",
                ErrorCode.JOB_CRASHED,
            )
        if ended.failed is not None:
            return Outcome(JobStatus.FAILED, error=job_failed(ended.failed))
        if ended.not_json is not None:
            return Outcome(JobStatus.FAILED, error=NOT_JSON)
        if ended.crashed is not None:
            log.error("job %s: %s", job.record.job_id, ended.crashed)
            return Outcome(
                JobStatus.FAILED, error=JobError.of(ErrorCode.JOB_CRASHED, ended.crashed)
            )
        return Outcome(JobStatus.SUCCEEDED, value=ended.value)

    def _retry(self, job: LiveJob, failed: _Retry) -> Outcome | None:
        """Prepare the next try after a `retry_on` exception: None once it may start (the
        event appended, the attempt recorded, the backoff waited), else how the job ends."""
        attempt = job.attempt
        error = job_failed(failed.message)
        gave_up = Outcome(JobStatus.FAILED, error=JobError.of(failed.code, error.message))
        if attempt >= job.record.max_attempts:
            log.info("job %s: no attempt left after %d", job.record.job_id, attempt)
            return gave_up
        delay = retry_delay(attempt)
        if time.monotonic() + delay >= job.deadline:
            log.info("job %s: no time left for another attempt", job.record.job_id)
            return gave_up
        following = attempt + 1
        self.history(
            job.record,
            EventType.RETRIED,
            job.session_id,
            {
                "error_type": failed.error_type,
                "message": cap_job_text(failed.message, MAX_ERROR_MESSAGE_CHARS),
                "backoff_s": round(delay, 3),
            },
            attempt=following,
        )
        try:
            # Counted before the backoff: a session lost meanwhile resumes as this attempt.
            self._checkpoints.write(job.record.job_id, job.session_id, following, job.state_text)
        except JobMovedError:
            self._moved(job)
            return self._stopped(job)
        except CheckpointError as exc:
            log.warning("job %s: attempt %d not recorded: %s", job.record.job_id, following, exc)
        job.stop.wait(delay)
        if self.should_stop(job):
            return self._stopped(job)
        with self._lock:
            job.record = job.record.evolve(attempt=following, updated_at=utc_now())
            job.resumed_text = job.state_text
            job.milestone = 0
        log.info("job %s: attempt %d starts", job.record.job_id, following)
        return None

    def _stopped(self, job: LiveJob) -> Outcome:
        with self._lock:
            if job.stop_reason is None:
                # Stopped without this process asking: a child job that the session's stop
                # signal (sent to the whole process group) reached before this process's own
                # shutdown began. The agent is going away: no outcome, as at shutdown.
                job.stop_reason = StopReason.SHUTDOWN
        return stopped_outcome(job.stop_reason, job.record.max_runtime_s)

    def should_stop(self, job: LiveJob) -> bool:
        """Whether the job was asked to stop or has passed its deadline (then noted as why)."""
        if job.stop.is_set():
            return True
        if time.monotonic() >= job.deadline:
            with self._lock:
                job.stop_reason = job.stop_reason or StopReason.DEADLINE
            job.stop.set()
            return True
        return False

    def _moved(self, job: LiveJob) -> None:
        with self._lock:
            job.stop_reason = StopReason.MOVED
        job.stop.set()

    def checkpoint(self, job: LiveJob, state_text: str) -> None:
        """Store a checkpoint of the job (fenced: JobStopped when its record gives it to
        another session now), then note it; returns once S3 has it."""
        try:
            at = self._checkpoints.write(job.record.job_id, job.session_id, job.attempt, state_text)
        except JobMovedError:
            self._moved(job)
            raise JobStopped from None
        now = time.monotonic()
        with self._lock:
            job.state_text = state_text
            job.record = job.record.evolve(checkpoint_at=at)
            last = job.checkpoint_event_at
            gap = next_checkpoint_event_gap(job.checkpoint_events)
            noted = last is None or now - last >= gap
            if noted:
                job.checkpoint_event_at = now
                job.checkpoint_events += 1
            record = job.record
        if noted:
            self.history(
                record, EventType.CHECKPOINTED, job.session_id, {"bytes": len(state_text.encode())}
            )

    def _checkpoint_from_child(self, job: LiveJob, state_text: str) -> tuple[str, str | None]:
        try:
            self.checkpoint(job, state_text)
        except JobStopped:
            return ("stopped", None)
        except CheckpointError as exc:
            return ("error", str(exc))
        except Exception:
            log.exception("job %s: checkpoint from its process failed", job.record.job_id)
            return ("error", "the checkpoint could not be stored; the agent logged why")
        return ("ok", None)

    def progress(self, job: LiveJob, percent: float, message: str) -> None:
        """Note the job's progress on its record; each tenth crossed is a history event."""
        # A job's own words: capped and made encodable here, where they are stored.
        text = cap_job_text(str(message), MAX_PROGRESS_MESSAGE_CHARS)
        milestone: JobRecord | None = None
        with self._lock:
            if job.record.status == JobStatus.RUNNING:
                shown = float(percent) if math.isfinite(percent) else job.record.progress.percent
                progress = Progress(min(max(shown, 0.0), 100.0), text)
                job.record = job.record.evolve(progress=progress, updated_at=utc_now())
                tenth = int(progress.percent // 10)
                if tenth > job.milestone:
                    job.milestone = tenth
                    milestone = job.record
        if milestone is not None:
            self.history(
                milestone,
                EventType.PROGRESS,
                job.session_id,
                {"percent": milestone.progress.to_wire()["percent"], "message": text},
            )

    def history(
        self,
        record: JobRecord,
        kind: EventType,
        session_id: str,
        detail: dict[str, str | int | float | bool | None],
        *,
        attempt: int | None = None,
    ) -> None:
        """Append an event to the job's history (in the background: the journal writes it)."""
        event = Event(
            type=str(kind),
            attempt=record.attempt if attempt is None else attempt,
            session_id=session_id,
            detail=detail,
        )
        self._journal.record(record.job_id, event, record.expires_at)

    def end(self, job: LiveJob, outcome: Outcome) -> None:
        """Make the outcome durable, then mark the job finished, then complete its task:
        whoever sees a finished job can rely on its outcome being in S3. A job that ends (or
        resumes) elsewhere (shutdown, suspend, moved) stores nothing here."""
        open_ended = job.stop_reason is not None and job.stop_reason.keeps_job_open
        try:
            with self._lock:
                record = job.record
            final = self._outcomes.finish(
                record, outcome, left_open=job.stop_reason if open_ended else None
            )
            with self._lock:
                job.record = final
                job.params = None
                job.child = None
        except Exception:
            log.exception("job %s could not be finished cleanly", job.record.job_id)
        finally:
            if job.task_id is not None:
                self._tracker.complete_async_task(job.task_id)
            job.done.set()
            self._release(job.session_id)
        # Not for an open-ended stop: at shutdown the session is going away, and invoking it
        # would only start a fresh one (shutdown itself signals resumable jobs); a suspended
        # or moved job is the poller's doing.
        with self._lock:
            record = job.record
            # Stopped from outside before shutdown began (see _stopped): shutdown will not
            # find it running, so the fast path is taken here.
            interrupted_early = (
                job.stop_reason == StopReason.SHUTDOWN
                and job.spec.resumable
                and not self._closing()
            )
        if not open_ended:
            self._outcomes.signal(record)
        elif interrupted_early:
            self._outcomes.signal(record, interrupted=True)
