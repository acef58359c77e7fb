"""The job runner: this process's jobs, their background work and their durable outcomes."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentjobs.agent.admission import (
    DEFAULT_MAX_RUNTIME_S,
    idempotent_answer,
    new_record,
    submit_answer,
)
from agentjobs.agent.child import ChildJob, ChildWork
from agentjobs.agent.context import JobFailed, JobStopped
from agentjobs.agent.declarations import JobSpec, call_job, plain_result
from agentjobs.agent.outcomes import (
    CRASHED,
    NOT_JSON,
    Outcome,
    OutcomeWriter,
    StopReason,
    job_failed,
    stopped_outcome,
)
from agentjobs.agent.settings import Settings
from agentjobs.agent.stored_answers import RETRY_MESSAGE, StoredAnswers, ping_entry
from agentjobs.agent.stores import AgentStores
from agentjobs.limits import MAX_PROGRESS_MESSAGE_CHARS, cap_job_text
from agentjobs.protocol import ErrorCode, JobQuery, JobStatus, ProtocolError, SubmitRequest, utc_now
from agentjobs.record import (
    JobError,
    JobRecord,
    Progress,
    new_job_id,
    request_fingerprint,
    visible_to,
)
from agentjobs.store import StoreError

log = logging.getLogger(__name__)

CANCEL_WAIT_S = 10.0
"""How long a cancel waits for the work to stop before it answers with what it knows."""


class TaskTracker(Protocol):
    """The part of BedrockAgentCoreApp that turns /ping HealthyBusy while work runs."""

    def add_async_task(self, name: str, metadata: dict[str, Any] | None = None) -> int: ...

    def complete_async_task(self, task_id: int) -> bool: ...


@dataclass
class _Job:
    """One job in this process. `record` is replaced, never mutated, under the runner's lock."""

    record: JobRecord
    spec: JobSpec
    params: Any
    deadline: float
    task_id: int | None = None
    child: ChildJob | None = None
    stop_reason: StopReason | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


class _ThreadContext:
    """The JobContext of a job running on a thread of this process: stops are cooperative."""

    def __init__(self, runner: JobRunner, job: _Job) -> None:
        self._runner = runner
        self._job = job

    @property
    def job_id(self) -> str:
        return self._job.record.job_id

    @property
    def session_id(self) -> str:
        return self._job.record.session_id

    def progress(self, percent: float, message: str) -> None:
        self._runner._progress(self._job, percent, message)

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            self.check_stop()
            now = time.monotonic()
            if now >= end:
                return
            self._job.stop.wait(max(min(end, self._job.deadline) - now, 0.0))

    def check_stop(self) -> None:
        if self._runner._should_stop(self._job):
            raise JobStopped


class JobRunner:
    """Accepts jobs, runs each in the background (CPU-heavy ones in a child process), answers
    about them from memory, and stores every outcome in S3 before the async task completes."""

    def __init__(
        self,
        settings: Settings,
        stores: AgentStores,
        tracker: TaskTracker,
        jobs: Mapping[str, JobSpec],
        default_job: str | None = None,
    ) -> None:
        self._settings = settings
        self._stores = stores
        self._tracker = tracker
        self._specs = jobs
        self._default_job = default_job
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._latest: dict[str, str] = {}
        self._active: dict[str, int] = {}
        """Per session: jobs running or being recorded, held to max_jobs_per_session."""
        self._closing = False
        self._stored = StoredAnswers(settings, stores)
        self._outcomes = OutcomeWriter(stores, lambda: self._closing)

    # -- requests ---------------------------------------------------------------------

    def submit(self, request: SubmitRequest, session_id: str, owner: str | None) -> dict[str, Any]:
        """Record the job as RUNNING, start its work in the background, answer at once."""
        if self._closing:
            raise ProtocolError(ErrorCode.INTERNAL_ERROR, "the agent is shutting down; retry")
        spec = self._spec(request.kind)
        params = spec.parse(request.input)
        unavailable = spec.unavailable()
        if unavailable is not None:
            raise ProtocolError(
                ErrorCode.KIND_UNAVAILABLE,
                f"job {spec.name} cannot run in this agent now: {unavailable}",
            )
        job_id = new_job_id(request.client_token, owner, session_id)
        fingerprint = request_fingerprint(
            spec.name, request.input, request.max_runtime_s or DEFAULT_MAX_RUNTIME_S
        )
        with self._lock:
            known = self._jobs.get(job_id)
            admitted = known is None and self._admit(session_id)
        if known is not None:
            return idempotent_answer(known.record, fingerprint)
        if not admitted:
            # A retry of a job this process no longer holds is still answered with it.
            stored = self._read_back(job_id) if request.client_token is not None else None
            if stored is not None:
                return idempotent_answer(stored, fingerprint)
            raise ProtocolError(
                ErrorCode.TOO_MANY_JOBS,
                f"this session already runs {self._settings.max_jobs_per_session} jobs at once, "
                f"the most this agent allows (MAX_JOBS_PER_SESSION="
                f"{self._settings.max_jobs_per_session}); nothing was started: wait for one "
                "to end, or submit in another session",
            )
        started = False
        try:
            record = new_record(
                job_id,
                spec.name,
                request,
                session_id=session_id,
                owner=owner,
                fingerprint=fingerprint,
                retention_days=self._settings.result_retention_days,
            )
            try:
                stored, created = self._stores.jobs().create_running(record)
            except StoreError as exc:
                log.warning("job %s (session %s) not recorded: %s", job_id, session_id, exc)
                raise ProtocolError(
                    ErrorCode.JOB_STORE_UNAVAILABLE,
                    f"the job could not be recorded, so nothing was started ({exc}); retry later",
                ) from exc
            if not created:
                with self._lock:
                    known = self._jobs.get(job_id)
                return idempotent_answer(known.record if known else stored, fingerprint)
            self._start(job_id, record, spec, params)
            started = True
        finally:
            if not started:
                self._release(session_id)
        return submit_answer(record)

    def _spec(self, name: str | None) -> JobSpec:
        """The job a submit names (None: the default job); UNKNOWN_KIND listing this agent's
        jobs when it has none of that name."""
        names = ", ".join(sorted(self._specs)) or "none"
        if name is None:
            if self._default_job is None:
                raise ProtocolError(
                    ErrorCode.UNKNOWN_KIND,
                    f"this agent has no default job: name one of its jobs in 'kind' ({names})",
                )
            name = self._default_job
        spec = self._specs.get(name)
        if spec is None:
            raise ProtocolError(
                ErrorCode.UNKNOWN_KIND,
                f"this agent has no job named {json.dumps(name)}; its jobs are: {names}",
            )
        return spec

    def _start(self, job_id: str, record: JobRecord, spec: JobSpec, params: Any) -> None:
        job = _Job(
            record=record,
            spec=spec,
            params=params,
            deadline=time.monotonic() + record.max_runtime_s,
        )
        with self._lock:
            self._jobs[job_id] = job
            self._latest[record.session_id] = job_id
            job.task_id = self._tracker.add_async_task(f"{record.kind} job", {"job_id": job_id})
        log.info("job %s (%s) accepted in session %s", job_id, record.kind, record.session_id)
        try:
            # Daemon: the lifespan shutdown stops the work; a thread must never hold the exit.
            threading.Thread(
                target=self._work, args=(job,), name=f"job-{job_id[:8]}", daemon=True
            ).start()
        except RuntimeError:
            log.exception("job %s could not be started", job_id)
            self._end(job, CRASHED)

    def _admit(self, session_id: str) -> bool:
        """Take one of the session's places (under the lock); False when none is free."""
        active = self._active.get(session_id, 0)
        if active >= self._settings.max_jobs_per_session:
            return False
        self._active[session_id] = active + 1
        return True

    def _release(self, session_id: str) -> None:
        with self._lock:
            left = self._active.get(session_id, 0) - 1
            if left > 0:
                self._active[session_id] = left
            else:
                self._active.pop(session_id, None)

    def _read_back(self, job_id: str) -> JobRecord | None:
        try:
            return self._stores.jobs().get(job_id)
        except (StoreError, ValueError) as exc:
            log.warning("job %s could not be read back: %s", job_id, exc)
            return None

    def answer(self, query: JobQuery, session_id: str, owner: str | None = None) -> dict[str, Any]:
        """Answer status, result or cancel from this process's own state, to a caller that may
        see the job (record.visible_to); a job it does not run (its session was stopped or
        recycled), or may not show this caller, is answered from the stores."""
        with self._lock:
            job_id = query.job_id or self._latest.get(session_id)
            job = self._jobs.get(job_id) if job_id is not None else None
        if job is not None and not visible_to(job.record, session_id, owner):
            # Answered exactly as a job nobody knows: a stranger learns nothing, not even
            # that the id exists or which job the session ran last.
            log.info("job %s withheld from a caller that may not see it", job.record.job_id)
            job = None
        if job is None:
            return self._stored.answer(query, session_id, owner)
        if query.action == "cancel":
            self._cancel(job)
        with self._lock:
            record = job.record
        return record.to_answer(with_outcome=query.action != "status")

    def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop every job and its child process; called from the app's lifespan shutdown."""
        with self._lock:
            self._closing = True
            running = [job for job in self._jobs.values() if not job.done.is_set()]
            for job in running:
                job.stop_reason = job.stop_reason or StopReason.SHUTDOWN
                job.stop.set()
        for job in running:
            if job.child is not None:
                job.child.stop()
        end = time.monotonic() + grace_s
        for job in running:
            job.done.wait(max(end - time.monotonic(), 0.0))
        if running:
            log.warning("agent stopped with %d job(s) unfinished", len(running))

    def child_pids(self) -> list[int]:
        """Process ids of the jobs' live child processes."""
        with self._lock:
            return [j.child.pid for j in self._jobs.values() if j.child and j.child.pid]

    def ping(self, session_id: str, owner: str | None = None) -> dict[str, Any]:
        """`{"method": "ping"}`: Healthy or HealthyBusy as /ping says it, and the session's jobs
        (this process's, then the stored ones it does not run)."""
        with self._lock:
            busy = any(not job.done.is_set() for job in self._jobs.values())
            mine = [
                job.record
                for job in self._jobs.values()
                if job.record.session_id == session_id and visible_to(job.record, session_id, owner)
            ]
        answer: dict[str, Any] = {
            "status": "HealthyBusy" if busy else "Healthy",
            "jobs": [ping_entry(record, live=True) for record in reversed(mine)],
        }
        try:
            stored = self._stored.session_jobs(session_id, owner, {r.job_id for r in mine})
        except StoreError as exc:
            log.warning("session %s: stored jobs not listed: %s", session_id, exc)
            answer["error"] = {
                "code": str(ErrorCode.JOB_STORE_UNAVAILABLE),
                "message": f"the session's earlier jobs are not listed: {RETRY_MESSAGE}",
            }
            return answer
        answer["jobs"].extend(ping_entry(job.record, live=False) for job in stored)
        return answer

    # -- the work ---------------------------------------------------------------------

    def _work(self, job: _Job) -> None:
        outcome = CRASHED
        try:
            outcome = self._execute(job)
        except Exception:
            log.exception("job %s (session %s) crashed", job.record.job_id, job.record.session_id)
        finally:
            self._end(job, outcome)

    def _execute(self, job: _Job) -> Outcome:
        try:
            if job.spec.in_child(job.params):
                return self._execute_in_child(job)
            spec = job.spec
            value = call_job(spec.func, spec.takes_context, job.params, _ThreadContext(self, job))
        except JobStopped:
            return self._stopped(job)
        except JobFailed as exc:
            return Outcome(JobStatus.FAILED, error=job_failed(exc.message))
        try:
            return Outcome(JobStatus.SUCCEEDED, value=plain_result(value))
        except (TypeError, ValueError):
            log.error(
                "job %s returned a %s, which JSON cannot carry", job.record.job_id, type(value)
            )
            return Outcome(JobStatus.FAILED, error=NOT_JSON)

    def _execute_in_child(self, job: _Job) -> Outcome:
        record = job.record
        work = ChildWork(
            func=job.spec.func,
            takes_context=job.spec.takes_context,
            params=job.params,
            job_id=record.job_id,
            session_id=record.session_id,
        )
        child = ChildJob(job.spec.name, work)
        with self._lock:
            job.child = child
        ended = child.follow(
            on_progress=lambda percent, message: self._progress(job, percent, message),
            should_stop=lambda: self._should_stop(job),
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

    def _stopped(self, job: _Job) -> Outcome:
        return stopped_outcome(job.stop_reason, job.record.max_runtime_s)

    def _should_stop(self, job: _Job) -> bool:
        if job.stop.is_set():
            return True
        if time.monotonic() >= job.deadline:
            with self._lock:
                job.stop_reason = job.stop_reason or StopReason.DEADLINE
            job.stop.set()
            return True
        return False

    def _progress(self, job: _Job, percent: float, message: str) -> None:
        # A job's own words: capped and made encodable here, where they are stored.
        text = cap_job_text(str(message), MAX_PROGRESS_MESSAGE_CHARS)
        with self._lock:
            if job.record.status == JobStatus.RUNNING:
                shown = float(percent) if math.isfinite(percent) else job.record.progress.percent
                progress = Progress(min(max(shown, 0.0), 100.0), text)
                job.record = job.record.evolve(progress=progress, updated_at=utc_now())

    def _cancel(self, job: _Job) -> None:
        with self._lock:
            if job.done.is_set():
                return
            job.stop_reason = job.stop_reason or StopReason.CANCEL
            job.stop.set()
            child = job.child
        log.info("job %s cancel requested", job.record.job_id)
        if child is not None:
            child.stop()
        job.done.wait(CANCEL_WAIT_S)

    # -- the end of a job -------------------------------------------------------------

    def _end(self, job: _Job, outcome: Outcome) -> None:
        """Make the outcome durable, then mark the job finished, then complete its task:
        whoever sees a finished job can rely on its outcome being in S3."""
        try:
            with self._lock:
                record = job.record
            final = self._outcomes.finish(
                record, outcome, durable=job.stop_reason != StopReason.SHUTDOWN
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
            self._release(job.record.session_id)
        # Not at shutdown: the session is going away, and invoking it would only start a
        # fresh one; the poller's schedule collects such a job.
        if job.stop_reason != StopReason.SHUTDOWN:
            with self._lock:
                record = job.record
            self._outcomes.signal(record)
