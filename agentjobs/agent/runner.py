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

from agentjobs import schema
from agentjobs.agent.admission import (
    DEFAULT_MAX_RUNTIME_S,
    check_durability,
    idempotent_answer,
    new_record,
    submit_answer,
)
from agentjobs.agent.checkpoints import (
    CheckpointWriter,
    JobMovedError,
    encode_state,
    next_checkpoint_event_gap,
    retry_delay,
)
from agentjobs.agent.child import ChildJob, ChildWork, not_resumable_message
from agentjobs.agent.context import CheckpointError, JobFailed, JobStopped
from agentjobs.agent.declarations import JobSpec, call_job, plain_result
from agentjobs.agent.journal import JobJournal
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
from agentjobs.agent.stored_answers import (
    RETRY_MESSAGE,
    StoredAnswers,
    ping_entry,
    unknown_job_answer,
)
from agentjobs.agent.stores import AgentStores
from agentjobs.history import Event, EventType
from agentjobs.limits import MAX_ERROR_MESSAGE_CHARS, MAX_PROGRESS_MESSAGE_CHARS, cap_job_text
from agentjobs.protocol import (
    Action,
    ErrorCode,
    JobQuery,
    JobStatus,
    ProtocolError,
    SubmitRequest,
    encode_json,
    parse_time,
    utc_now,
)
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
"""How long a cancel (or suspend) waits for the work to stop before it answers with what it
knows."""

POLLER_ONLY = (
    "'{action}' is sent by the poller, without a user id (the "
    "X-Amzn-Bedrock-AgentCore-Runtime-User-Id header), in the session it gave the job; a user "
    "asks for status, result or cancel"
)


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
    session_id: str
    """Where this process runs the job: the submit's session, or the one it was resumed in."""
    state_text: str | None = None
    """The last checkpoint's state, encoded: what a retry or a resumed attempt continues from."""
    resumed_text: str | None = None
    """The state this attempt started from (its `resumed_state`), encoded."""
    milestone: int = 0
    """The last multiple of 10 % the job's progress crossed in this attempt."""
    checkpoint_event_at: float | None = None
    checkpoint_events: int = 0
    task_id: int | None = None
    child: ChildJob | None = None
    stop_reason: StopReason | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def attempt(self) -> int:
        return self.record.attempt


@dataclass(frozen=True)
class _Retry:
    """A try of the job ended with one of its `retry_on` exceptions."""

    error_type: str
    message: str


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
        self._runner._checkpoint(self._job, encode_state(state))

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
        self._checkpoints = CheckpointWriter(stores)
        self._journal = JobJournal(stores)
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
                    known_record = self._keep_input(record, request)
                    if known_record is not None:
                        return idempotent_answer(known_record, fingerprint)
                    input_kept = True
                stored, created = self._stores.jobs().create_running(record)
            except StoreError as exc:
                log.warning("job %s (session %s) not recorded: %s", job_id, session_id, exc)
                if input_kept:
                    self._drop_input(job_id)
                raise ProtocolError(
                    ErrorCode.JOB_STORE_UNAVAILABLE,
                    f"the job could not be recorded, so nothing was started ({exc}); retry later",
                ) from exc
            if not created:
                with self._lock:
                    known = self._jobs.get(job_id)
                return idempotent_answer(known.record if known else stored, fingerprint)
            self._history(
                record,
                EventType.SUBMITTED,
                session_id,
                {"kind": record.kind, "max_attempts": record.max_attempts},
            )
            self._start(_Job(record, spec, params, self._deadline(record), session_id))
            started = True
        finally:
            with self._lock:
                self._starting.pop(job_id, None)
            if not started:
                self._release(session_id)
        return submit_answer(record)

    def _keep_input(self, record: JobRecord, request: SubmitRequest) -> JobRecord | None:
        """Store a resumable job's input, before its record, so that a record of a resumable
        job always has its input; the existing record instead when a retried submit (same
        client_token) finds one, whose input is then left as it is. StoreError when S3 or the
        table cannot be reached."""
        if request.client_token is not None:
            try:
                existing = self._stores.jobs().get(record.job_id)
            except ValueError as exc:
                raise StoreError("the job's existing record could not be read") from exc
            if existing is not None:
                return existing
        self._stores.results().put_input(
            record.job_id,
            {
                "job_id": record.job_id,
                "kind": record.kind,
                "input": request.input,
                "max_runtime_s": record.max_runtime_s,
            },
        )
        return None

    def _drop_input(self, job_id: str) -> None:
        # The submit changes nothing when it fails: the input of a job never recorded goes.
        try:
            self._stores.results().delete_input(job_id)
        except StoreError as exc:
            log.warning("job %s: input of an unrecorded job left in S3: %s", job_id, exc)

    def _check_available(self, spec: JobSpec) -> None:
        unavailable = spec.unavailable()
        if unavailable is not None:
            raise ProtocolError(
                ErrorCode.KIND_UNAVAILABLE,
                f"job {spec.name} cannot run in this agent now: {unavailable}",
            )

    def _deadline(self, record: JobRecord) -> float:
        """The monotonic time the job must end by: its record's deadline (for a resumed job,
        what is left of it)."""
        deadline = record.deadline()
        if deadline is None:
            return time.monotonic() + record.max_runtime_s
        left = (deadline - parse_time(utc_now())).total_seconds()
        return time.monotonic() + min(left, record.max_runtime_s)

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

    def _start(self, job: _Job) -> None:
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

    def _live_answer(self, job: _Job, *, with_outcome: bool) -> dict[str, Any]:
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
                    return _not_here(job_id)
                if not known.spec.resumable:
                    raise ProtocolError(ErrorCode.NOT_RESUMABLE, _not_resumable(known.record))
                # Also once it ended here: its answer, rather than an error, lets the poller
                # collect the end it missed.
                return self._live_answer(known, with_outcome=False)
            record = self._resumable_record(job_id, session_id)
            if record is None:
                return _not_here(job_id)
            spec = self._spec(record.kind)
            if not spec.resumable:
                raise ProtocolError(
                    ErrorCode.NOT_RESUMABLE,
                    f"job {job_id} is a {record.kind} job, which this agent does not declare "
                    "resumable (@app.job(..., resumable=True)); it cannot be resumed here",
                )
            self._check_available(spec)
            params = self._stored_params(record, spec)
            live, state_text = self._from_checkpoint(record)
            with self._lock:
                admitted = self._admit(session_id)
            if not admitted:
                raise ProtocolError(
                    ErrorCode.TOO_MANY_JOBS,
                    f"this session already runs {self._settings.max_jobs_per_session} jobs at "
                    "once; nothing was started: retry when one has ended",
                )
            job = _Job(
                live,
                spec,
                params,
                self._deadline(live),
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

    def _resumable_record(self, job_id: str, session_id: str) -> JobRecord | None:
        """The job's record when this session may resume it; None when it is not this
        session's to run. ProtocolError when it has ended or is not resumable."""
        try:
            record = self._stores.jobs().get(job_id)
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
            raise ProtocolError(ErrorCode.NOT_RESUMABLE, _not_resumable(record))
        if record.active_session_id != session_id:
            return None
        return record

    def _stored_params(self, record: JobRecord, spec: JobSpec) -> Any:
        where = schema.input_key(record.job_id)
        try:
            stored = self._stores.results().get_input(record.job_id)
        except StoreError as exc:
            log.warning("job %s: input unreadable for resume: %s", record.job_id, exc)
            raise ProtocolError(ErrorCode.JOB_STORE_UNAVAILABLE, RETRY_MESSAGE) from exc
        job_input = stored.get("input") if stored is not None else None
        if (
            stored is None
            or stored.get("job_id") != record.job_id
            or not isinstance(job_input, dict)
        ):
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

    def _from_checkpoint(self, record: JobRecord) -> tuple[JobRecord, str | None]:
        """The record as the resumed attempt starts it (the attempt the checkpoint object
        counted, if more), and the last checkpoint's state, encoded."""
        try:
            checkpoint = self._stores.results().get_checkpoint(record.job_id)
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

    # -- the work ---------------------------------------------------------------------

    def _work(self, job: _Job) -> None:
        outcome = CRASHED
        try:
            outcome = self._execute(job)
        except Exception:
            log.exception("job %s (session %s) crashed", job.record.job_id, job.session_id)
        finally:
            self._end(job, outcome)

    def _execute(self, job: _Job) -> Outcome:
        """Run the job's tries until one ends it (a `retry_on` exception with attempts and
        time left starts the next)."""
        while True:
            if self._should_stop(job):
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

    def _try_in_thread(self, job: _Job) -> Outcome | _Retry:
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

    def _try_in_child(self, job: _Job) -> Outcome | _Retry:
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
                on_progress=lambda percent, message: self._progress(job, percent, message),
                should_stop=lambda: self._should_stop(job),
                on_checkpoint=lambda text: self._checkpoint_from_child(job, text),
            )
        except JobStopped:
            return self._stopped(job)
        finally:
            with self._lock:
                job.child = None
        if ended.retry is not None:
            return _Retry(*ended.retry)
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

    def _retry(self, job: _Job, failed: _Retry) -> Outcome | None:
        """Prepare the next try after a `retry_on` exception: None once it may start (the
        event appended, the attempt recorded, the backoff waited), else how the job ends."""
        attempt = job.attempt
        gave_up = Outcome(JobStatus.FAILED, error=job_failed(failed.message))
        if attempt >= job.record.max_attempts:
            log.info("job %s: no attempt left after %d", job.record.job_id, attempt)
            return gave_up
        delay = retry_delay(attempt)
        if time.monotonic() + delay >= job.deadline:
            log.info("job %s: no time left for another attempt", job.record.job_id)
            return gave_up
        following = attempt + 1
        self._history(
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
        if self._should_stop(job):
            return self._stopped(job)
        with self._lock:
            job.record = job.record.evolve(attempt=following, updated_at=utc_now())
            job.resumed_text = job.state_text
            job.milestone = 0
        log.info("job %s: attempt %d starts", job.record.job_id, following)
        return None

    def _stopped(self, job: _Job) -> Outcome:
        with self._lock:
            if job.stop_reason is None:
                # Stopped without this process asking: a child job that the session's stop
                # signal (sent to the whole process group) reached before this process's own
                # shutdown began. The agent is going away: no outcome, as at shutdown.
                job.stop_reason = StopReason.SHUTDOWN
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

    def _moved(self, job: _Job) -> None:
        with self._lock:
            job.stop_reason = StopReason.MOVED
        job.stop.set()

    def _checkpoint(self, job: _Job, state_text: str) -> None:
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
            self._history(
                record, EventType.CHECKPOINTED, job.session_id, {"bytes": len(state_text.encode())}
            )

    def _checkpoint_from_child(self, job: _Job, state_text: str) -> tuple[str, str | None]:
        try:
            self._checkpoint(job, state_text)
        except JobStopped:
            return ("stopped", None)
        except CheckpointError as exc:
            return ("error", str(exc))
        except Exception:
            log.exception("job %s: checkpoint from its process failed", job.record.job_id)
            return ("error", "the checkpoint could not be stored; the agent logged why")
        return ("ok", None)

    def _progress(self, job: _Job, percent: float, message: str) -> None:
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
            self._history(
                milestone,
                EventType.PROGRESS,
                job.session_id,
                {"percent": milestone.progress.to_wire()["percent"], "message": text},
            )

    def _history(
        self,
        record: JobRecord,
        kind: EventType,
        session_id: str,
        detail: dict[str, str | int | float | bool | None],
        *,
        attempt: int | None = None,
    ) -> None:
        event = Event(
            type=str(kind),
            attempt=record.attempt if attempt is None else attempt,
            session_id=session_id,
            detail=detail,
        )
        self._journal.record(record.job_id, event, record.expires_at)

    def _cancel(self, job: _Job) -> None:
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

    # -- the end of a job -------------------------------------------------------------

    def _end(self, job: _Job, outcome: Outcome) -> None:
        """Make the outcome durable, then mark the job finished, then complete its task:
        whoever sees a finished job can rely on its outcome being in S3. A job that ends (or
        resumes) elsewhere (shutdown, suspend, moved) stores nothing here."""
        open_ended = job.stop_reason is not None and job.stop_reason.keeps_job_open
        try:
            with self._lock:
                record = job.record
            final = self._outcomes.finish(record, outcome, durable=not open_ended)
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
                job.stop_reason == StopReason.SHUTDOWN and job.spec.resumable and not self._closing
            )
        if not open_ended:
            self._outcomes.signal(record)
        elif interrupted_early:
            self._outcomes.signal(record, interrupted=True)


def _not_resumable(record: JobRecord) -> str:
    return (
        f"job {record.job_id} is a {record.kind} job, which is not declared resumable; only a "
        "job declared @app.job(..., resumable=True) can be resumed"
    )


def _not_here(job_id: str) -> dict[str, Any]:
    return unknown_job_answer(
        job_id, "no job with this id in this session or the job table that this caller may read"
    )
