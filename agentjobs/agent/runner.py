"""The job runner: the requests about this process's jobs, from submit to suspend, and shutdown.

Past 400 lines on purpose: every request reads and changes the same per-session bookkeeping
(jobs, latest job, places taken, jobs starting) under one lock; the work itself, the kept
input of a resumable job and a job's state live in execution, resumption and live_job."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from agentjobs.agent.adapters import AgentAdapters
from agentjobs.agent.admission import (
    DEFAULT_MAX_RUNTIME_S,
    check_durability,
    idempotent_answer,
    new_record,
    submit_answer,
)
from agentjobs.agent.checkpoints import CheckpointWriter
from agentjobs.agent.declarations import JobSpec
from agentjobs.agent.execution import JobExecutor
from agentjobs.agent.journal import JobJournal
from agentjobs.agent.live_job import LiveJob, TaskTracker, monotonic_deadline
from agentjobs.agent.outcomes import CRASHED, OutcomeWriter, StopReason
from agentjobs.agent.resumption import (
    drop_input,
    from_checkpoint,
    keep_input,
    not_here,
    not_resumable,
    resumable_record,
    stored_params,
)
from agentjobs.agent.settings import AgentSettings
from agentjobs.agent.stored_answers import RETRY_MESSAGE, StoredAnswers, ping_entry
from agentjobs.history import EventType
from agentjobs.protocol import (
    Action,
    ErrorCode,
    JobQuery,
    JobStatus,
    ProtocolError,
    SubmitRequest,
    utc_now,
)
from agentjobs.record import JobRecord, new_job_id, request_fingerprint, visible_to
from agentjobs.store import StoreError

log = logging.getLogger(__name__)

CANCEL_WAIT_S = 10.0
"""How long a cancel (or suspend) waits for the work to stop before it answers with what it
knows."""

POLLER_ONLY = (
    "'{action}' is sent by the poller, without a user id (the "
    "X-Amzn-Bedrock-AgentCore-Runtime-User-Id header), in the session it gave the job; a user "
    "asks for status, result or cancel"
)


class JobRunner:
    """Accepts jobs, runs each in the background (CPU-heavy ones in a child process), answers
    about them from memory, and stores every outcome in S3 before the async task completes."""

    def __init__(
        self,
        settings: AgentSettings,
        adapters: AgentAdapters,
        tracker: TaskTracker,
        jobs: Mapping[str, JobSpec],
        default_job: str | None = None,
    ) -> None:
        self._settings = settings
        self._adapters = adapters
        self._tracker = tracker
        self._specs = jobs
        self._default_job = default_job
        self._lock = threading.Lock()
        self._jobs: dict[str, LiveJob] = {}
        self._latest: dict[str, str] = {}
        self._active: dict[str, int] = {}
        """Per session: jobs running or being recorded, held to max_jobs_per_session."""
        self._closing = False
        self._stored = StoredAnswers(settings, adapters)
        self._outcomes = OutcomeWriter(adapters, lambda: self._closing)
        self._journal = JobJournal(adapters)
        self._executor = JobExecutor(
            self._lock,
            tracker,
            outcomes=self._outcomes,
            checkpoints=CheckpointWriter(adapters),
            journal=self._journal,
            release=self._release,
            closing=lambda: self._closing,
        )
        self._resume_lock = threading.Lock()
        self._starting: dict[str, JobRecord] = {}
        """Jobs recorded (or being recorded) whose work has not started yet: a poll in that
        moment is answered RUNNING from here, never as a job this process does not know."""
        self.started_at = utc_now()
        """When this process began serving: a live answer's `session_started_at`, from which
        the poller tells a session's age."""

    # -- requests ---------------------------------------------------------------------

    def submit(self, request: SubmitRequest, session_id: str, owner: str | None) -> dict[str, Any]:
        """Record the job as RUNNING, start its work in the background, answer at once."""
        if self._closing:
            raise ProtocolError(ErrorCode.INTERNAL_ERROR, "the agent is shutting down; retry")
        spec = self._spec(request.kind)
        check_durability(spec.name, spec.resumable, request)
        params = spec.parse(request.input)
        self._check_available(spec)
        job_id = new_job_id(request.client_token, owner, session_id)
        fingerprint = request_fingerprint(
            spec.name,
            request.input,
            request.max_runtime_s or DEFAULT_MAX_RUNTIME_S,
            request.max_attempts,
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
                resumable=spec.resumable,
            )
            with self._lock:
                self._starting[job_id] = record
            input_kept = False
            try:
                if spec.resumable:
                    known_record = keep_input(self._adapters, record, request)
                    if known_record is not None:
                        return idempotent_answer(known_record, fingerprint)
                    input_kept = True
                stored, created = self._adapters.jobs().create_running(record)
            except StoreError as exc:
                log.warning("job %s (session %s) not recorded: %s", job_id, session_id, exc)
                if input_kept:
                    drop_input(self._adapters, job_id)
                raise ProtocolError(
                    ErrorCode.JOB_STORE_UNAVAILABLE,
                    f"the job could not be recorded, so nothing was started ({exc}); retry later",
                ) from exc
            if not created:
                with self._lock:
                    known = self._jobs.get(job_id)
                return idempotent_answer(known.record if known else stored, fingerprint)
            self._executor.history(
                record,
                EventType.SUBMITTED,
                session_id,
                {"kind": record.kind, "max_attempts": record.max_attempts},
            )
            self._start(LiveJob(record, spec, params, monotonic_deadline(record), session_id))
            started = True
        finally:
            with self._lock:
                self._starting.pop(job_id, None)
            if not started:
                self._release(session_id)
        return submit_answer(record)

    def _check_available(self, spec: JobSpec) -> None:
        unavailable = spec.unavailable()
        if unavailable is not None:
            raise ProtocolError(
                ErrorCode.KIND_UNAVAILABLE,
                f"job {spec.name} cannot run in this agent now: {unavailable}",
            )

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

    def _start(self, job: LiveJob) -> None:
        record = job.record
        job_id = record.job_id
        with self._lock:
            self._jobs[job_id] = job
            self._starting.pop(job_id, None)
            self._latest[job.session_id] = job_id
            job.task_id = self._tracker.add_async_task(f"{record.kind} job", {"job_id": job_id})
        log.info(
            "job %s (%s) attempt %d started in session %s",
            job_id,
            record.kind,
            record.attempt,
            job.session_id,
        )
        try:
            # Daemon: the lifespan shutdown stops the work; a thread must never hold the exit.
            threading.Thread(
                target=self._executor.work, args=(job,), name=f"job-{job_id[:8]}", daemon=True
            ).start()
        except RuntimeError:
            log.exception("job %s could not be started", job_id)
            self._executor.end(job, CRASHED)

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
            return self._adapters.jobs().get(job_id)
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
            starting = self._starting.get(job_id) if job is None and job_id else None
        if starting is not None and visible_to(starting, session_id, owner):
            # Its record may already be in the table, where a poller can find it: answered
            # as the running job it is about to be, not as one this process does not know.
            answer = starting.to_answer(with_outcome=False)
            answer["session_started_at"] = self.started_at
            return answer
        if job is not None and not visible_to(job.record, session_id, owner):
            # Answered exactly as a job nobody knows: a stranger learns nothing, not even
            # that the id exists or which job the session ran last.
            log.info("job %s withheld from a caller that may not see it", job.record.job_id)
            job = None
        if job is None:
            return self._stored.answer(query, session_id, owner)
        if query.action == "cancel":
            self._cancel(job)
        return self._live_answer(job, with_outcome=query.action != "status")

    def _live_answer(self, job: LiveJob, *, with_outcome: bool) -> dict[str, Any]:
        with self._lock:
            record = job.record
        answer = record.to_answer(with_outcome=with_outcome)
        if record.status == JobStatus.RUNNING:
            answer["session_started_at"] = self.started_at
        return answer

    def resume(self, job_id: str, session_id: str, owner: str | None) -> dict[str, Any]:
        """Start a resumable job again in this session, which the poller gave it (the record's
        active session), from its stored input and last checkpoint. Idempotent: a job this
        process already runs is answered as `status`. Appends no event: the poller does."""
        if owner is not None:
            raise ProtocolError(ErrorCode.INVALID_REQUEST, POLLER_ONLY.format(action="resume"))
        if self._closing:
            raise ProtocolError(ErrorCode.INTERNAL_ERROR, "the agent is shutting down; retry")
        with self._resume_lock:
            with self._lock:
                known = self._jobs.get(job_id)
            if known is not None:
                if known.session_id != session_id:
                    return not_here(job_id)
                if not known.spec.resumable:
                    raise ProtocolError(ErrorCode.NOT_RESUMABLE, not_resumable(known.record))
                # Also once it ended here: its answer, rather than an error, lets the poller
                # collect the end it missed.
                return self._live_answer(known, with_outcome=False)
            record = resumable_record(self._adapters, job_id, session_id)
            if record is None:
                return not_here(job_id)
            spec = self._spec(record.kind)
            if not spec.resumable:
                raise ProtocolError(
                    ErrorCode.NOT_RESUMABLE,
                    f"job {job_id} is a {record.kind} job, which this agent does not declare "
                    "resumable (@app.job(..., resumable=True)); it cannot be resumed here",
                )
            self._check_available(spec)
            params = stored_params(self._adapters, record, spec)
            live, state_text = from_checkpoint(self._adapters, record)
            with self._lock:
                admitted = self._admit(session_id)
            if not admitted:
                raise ProtocolError(
                    ErrorCode.TOO_MANY_JOBS,
                    f"this session already runs {self._settings.max_jobs_per_session} jobs at "
                    "once; nothing was started: retry when one has ended",
                )
            job = LiveJob(
                live,
                spec,
                params,
                monotonic_deadline(live),
                session_id,
                state_text=state_text,
                resumed_text=state_text,
            )
            try:
                self._start(job)
            except BaseException:
                self._release(session_id)
                raise
        answer = submit_answer(live)
        answer["attempt"] = live.attempt
        answer["max_attempts"] = live.max_attempts
        return answer

    def suspend(self, job_id: str, session_id: str, owner: str | None) -> dict[str, Any]:
        """Stop a resumable job this process runs without ending it (it may store a last
        checkpoint), store no outcome, and forget it: the poller resumes it elsewhere."""
        if owner is not None:
            raise ProtocolError(ErrorCode.INVALID_REQUEST, POLLER_ONLY.format(action="suspend"))
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.session_id != session_id:
            return self._stored.answer(JobQuery(Action.STATUS, job_id), session_id, None)
        if not job.spec.resumable:
            raise ProtocolError(
                ErrorCode.NOT_RESUMABLE,
                f"job {job_id} is a {job.record.kind} job, which is not declared resumable; it "
                "can only run to its end, or be cancelled",
            )
        with self._lock:
            if job.done.is_set() or job.stop_reason not in (None, StopReason.SUSPEND):
                suspended = False
            else:
                suspended = True
                job.stop_reason = StopReason.SUSPEND
                job.stop.set()
            child = job.child
        if not suspended:
            return self._live_answer(job, with_outcome=True)
        log.info("job %s suspend requested", job_id)
        if child is not None:
            child.request_stop()
        job.done.wait(CANCEL_WAIT_S)
        with self._lock:
            self._jobs.pop(job_id, None)
            if self._latest.get(session_id) == job_id:
                del self._latest[session_id]
            checkpoint_at = job.record.checkpoint_at
        return {
            "job_id": job_id,
            "status": str(JobStatus.RUNNING),
            "suspended": True,
            "checkpoint_at": checkpoint_at,
        }

    def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop every job and its child process; called from the app's lifespan shutdown."""
        with self._lock:
            self._closing = True
            running = [job for job in self._jobs.values() if not job.done.is_set()]
            for job in running:
                job.stop_reason = job.stop_reason or StopReason.SHUTDOWN
                job.stop.set()
        end = time.monotonic() + grace_s
        for job in running:
            if job.child is not None:
                job.child.request_stop()
        for job in running:
            # A resumable job's `except JobStopped: ctx.checkpoint(...)` runs in this wait.
            job.done.wait(max(end - time.monotonic(), 0.0))
        if running:
            log.warning("agent stopped with %d job(s) unfinished", len(running))
        for job in running:
            if job.spec.resumable and job.stop_reason == StopReason.SHUTDOWN:
                # The fast path: the poller resumes the job now, not at its next tick.
                self._outcomes.signal(job.record, interrupted=True)
        self._journal.close(max(end - time.monotonic(), 1.0))

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
                if job.session_id == session_id and visible_to(job.record, session_id, owner)
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

    def _cancel(self, job: LiveJob) -> None:
        with self._lock:
            if job.done.is_set():
                return
            job.stop_reason = job.stop_reason or StopReason.CANCEL
            job.stop.set()
            child = job.child
        log.info("job %s cancel requested", job.record.job_id)
        if child is not None:
            child.request_stop()
        job.done.wait(CANCEL_WAIT_S)
