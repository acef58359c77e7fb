"""Reconcile one job with its session: poll, record, notify once, stop the spent session."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger

from agentjobs import schema
from agentjobs.history import Event, EventType
from agentjobs.notifier import Notification, NotifyError, NotifyRefusedError
from agentjobs.protocol import ErrorCode, JobStatus, encode_json, parse_time, utc_now
from agentjobs.record import (
    INLINE_RESULT_LIMIT,
    JobError,
    JobRecord,
    MalformedRecord,
    Progress,
    StoredJob,
)
from agentjobs.store import (
    RecordRefusedError,
    ResultConflictError,
    StoreError,
    TransitionConflictError,
)
from jobpoller.agentcore import Busy, Replied, StopSessionError, Unreachable
from jobpoller.answers import (
    Finished,
    NotKnown,
    ResumeRefused,
    StillRunning,
    Unusable,
    attempt_of,
    read_answer,
    read_resume_answer,
    time_of,
)
from jobpoller.answers import read_answer_object as read_outcome
from jobpoller.lease import Ending, Lease, close_final
from jobpoller.report import FINISHED_METRIC, Metric
from jobpoller.services import Pass

logger = Logger(service="poller", child=True)

INVALID_RECORD = "INVALID_RECORD"
"""Error code of a job whose record is not a valid job record (the protocol has none)."""


SessionShared = Callable[[StoredJob], bool]
"""Whether other jobs in flight use this job's session, so it must not be stopped yet."""


def reconcile(job_id: str, run: Pass, session_shared: SessionShared) -> StoredJob | None:  # noqa: PLR0911
    """Take the job's lease and move it as far as it can go now. Returns the job as this run
    left it, or None when another poller holds it or it needs nothing. Never raises for a
    failure of this one job: it is logged, counted and left for the next tick."""
    try:
        taken = Lease.take(run.services.store, job_id, run.holder, run.services.settings.lease_s)
    except StoreError:
        logger.exception("could not lease the job", extra={"job_id": job_id})
        run.retry_later(job_id)
        return None
    if taken is None:
        run.report.step(job_id, "skipped")
        return None
    lease, job = taken
    try:
        if not job.is_terminal:
            try:
                job = _advance(job, run, lease, session_shared)
            except RecordRefusedError as exc:
                job = _record_refused(job, run, lease, exc)
            if not job.is_terminal:
                run.report.step(job_id, "running")
                return job
        shared = job.active_session_id is not None and session_shared(job)
        if job.needs_notification:
            # A job that will wait for its shared session gives its lease back in the same
            # write that records the notification.
            job = _notify(job, run, lease, release=shared)
        if shared:
            run.report.step(job_id, "awaiting-session")
            return job
        stop_spent_session(job, run, lease)
        run.report.step(job_id, "closed")
        return job
    except TransitionConflictError:
        # Our lease expired and another poller moved the job: it is theirs now.
        logger.warning("the job changed under this poller", extra={"job_id": job_id})
        run.report.step(job_id, "conflict")
        return None
    except (StoreError, NotifyError, StopSessionError) as exc:
        logger.warning(
            "a step failed; the next tick resumes it",
            extra={"job_id": job_id, "session_id": job.active_session_id, "reason": str(exc)},
        )
        run.retry_later(job_id)
        return job
    finally:
        _release(lease)


def stop_spent_session(job: StoredJob, run: Pass, lease: Lease) -> None:
    """Stop the active session of a finished, notified job, then take the job off the attention
    index. A session that is already gone counts as stopped. (A resumed job's earlier
    sessions were stopped when it left them.)"""
    if job.active_session_id is not None:
        run.stop_once(job.active_session_id)
    lease.record_session_stopped(utc_now())


def close_spent_session(session_id: str, job_ids: list[str], run: Pass) -> None:
    """Stop a session whose jobs are all final (terminal and notified), then close each job
    with one conditional write, without taking its lease: stopping was all that was left.
    A job another poller holds, or already closed, is left to it."""
    try:
        run.stop_once(session_id)
    except StopSessionError as exc:
        logger.warning(
            "could not stop the spent session; the next tick retries",
            extra={"session_id": session_id, "reason": str(exc)},
        )
        run.retry_later(*job_ids)
        return
    for job_id in job_ids:
        try:
            close_final(run.services.store, job_id, run.holder, utc_now())
        except TransitionConflictError:
            run.report.step(job_id, "skipped")
            continue
        except StoreError:
            logger.warning("could not close the job", extra={"job_id": job_id})
            run.retry_later(job_id)
            continue
        run.report.step(job_id, "closed")


def _release(lease: Lease) -> None:
    try:
        lease.release()
    except StoreError:
        # The lease expires by itself; the job only waits a little longer.
        logger.warning("could not release the lease", extra={"job_id": lease.job_id})


def _advance(  # noqa: PLR0911
    job: StoredJob, run: Pass, lease: Lease, session_shared: SessionShared
) -> StoredJob:
    """Poll an unfinished job and act on the answer (a progress write gives the lease back)."""
    if isinstance(job, MalformedRecord):
        logger.error("malformed job record", extra={"job_id": job.job_id, "reason": job.problem})
        run.report.count(Metric.BAD_RECORDS)
        run.report.count(Metric.POLL_ERRORS)
        error = JobError(INVALID_RECORD, f"the job record is malformed: {job.problem}")
        return _end(job, run, lease, Ending.failed(error))
    overdue = _is_overdue(job)
    if job.resume_pending:
        if overdue:
            return _time_out(job, run, lease)
        # The fresh session never said it took the job: ask it again, never a new attempt.
        return _send_resume(job, run, lease, session_shared)
    session_id = job.active_session_id or job.session_id
    reply = run.services.agent.ask(session_id, {"action": "result", "job_id": job.job_id})
    run.report.count(Metric.JOBS_POLLED)
    if isinstance(reply, Busy):
        if overdue:
            return _time_out(job, run, lease)
        logger.debug("session busy", extra={"job_id": job.job_id, "code": reply.code})
        return job
    if isinstance(reply, Unreachable):
        return _poll_failed(job, run, lease, session_shared, reason=reply.reason, overdue=overdue)
    assert isinstance(reply, Replied)
    answer = read_answer(reply.body, job.job_id)
    if isinstance(answer, Finished) and _is_stale(job, answer):
        logger.warning(
            "the session answered an earlier attempt's outcome; the job's session is lost",
            extra={"job_id": job.job_id, "attempt": job.attempt, "answered": answer.attempt},
        )
        answer = NotKnown()
    if isinstance(answer, NotKnown):
        return _recover(job, run, lease, session_shared)
    if isinstance(answer, Unusable):
        run.report.count(Metric.BAD_ANSWERS)
        reason = f"unusable answer: {answer.reason}"
        return _poll_failed(job, run, lease, session_shared, reason=reason, overdue=overdue)
    if isinstance(answer, StillRunning):
        if overdue:
            return _time_out(job, run, lease)
        return _still_running(job, run, lease, session_shared, answer)
    return _finish_from_answer(job, run, lease, answer)


def _still_running(
    job: JobRecord, run: Pass, lease: Lease, session_shared: SessionShared, answer: StillRunning
) -> StoredJob:
    """A RUNNING answer: hand the job off if its session nears its max lifetime, else record
    its progress (and a resumable job's attempt and last checkpoint time)."""
    if _nears_max_lifetime(job, answer, run):
        return _hand_off(job, run, lease, session_shared, answer)
    try:
        lease.record_progress(
            answer.progress,
            utc_now(),
            attempt=_later_attempt(job, answer.attempt),
            checkpoint_at=answer.checkpoint_at if job.resumable else None,
        )
    except RecordRefusedError as exc:
        return _record_refused(job, run, lease, exc, still_running=True)
    return job


def _recover(job: JobRecord, run: Pass, lease: Lease, session_shared: SessionShared) -> StoredJob:
    """The session no longer knows the job: take the current attempt's durable outcome, or
    resume the job in a fresh session (a resumable job with attempts left), or declare it
    LOST."""
    outcome = run.services.results.get_outcome(job.job_id)
    answer = read_outcome(outcome, job.job_id) if outcome is not None else None
    if isinstance(answer, Finished) and not _is_stale(job, answer):
        logger.info("recovered the stored outcome", extra={"job_id": job.job_id})
        return _finish_from_answer(job, run, lease, answer)
    if isinstance(answer, Finished):
        logger.warning(
            "the stored outcome is an earlier attempt's; it is ignored",
            extra={"job_id": job.job_id, "attempt": job.attempt, "stored": answer.attempt},
        )
    elif answer is not None:
        run.report.count(Metric.BAD_ANSWERS)
    reason = "the session no longer knew the job and no outcome of this attempt was stored"
    attempts = _attempts(job, run)
    if _may_resume(job, attempts):
        return _resume(job, run, lease, session_shared, attempts=attempts, reason=reason)
    if answer is None or isinstance(answer, Finished):
        logger.warning(
            "session recycled and no stored outcome: job lost",
            extra={"job_id": job.job_id, "session_id": job.active_session_id},
        )
        message = "the job's session was recycled before the job stored its outcome"
    else:
        problem = answer.reason if isinstance(answer, Unusable) else "it is not a finished job"
        message = f"the session was recycled and the stored outcome is unusable: {problem}"
    error = JobError.of(ErrorCode.SESSION_LOST, _with_attempts(message, job, attempts))
    ending = Ending(JobStatus.LOST, error=error, attempt=_later_attempt(job, attempts.current))
    return _end(job, run, lease, ending)


@dataclass(frozen=True)
class _Attempts:
    """Where a resumable job's tries stand: the attempt running (the later of the record's and
    the checkpoint object's: the agent counts retries in its own process there) and when its
    last checkpoint was taken."""

    current: int
    checkpoint_at: str | None


def _attempts(job: JobRecord, run: Pass) -> _Attempts:
    if not job.resumable:
        return _Attempts(job.attempt, None)
    checkpoint = run.services.results.get_checkpoint(job.job_id) or {}
    stored = attempt_of(checkpoint.get("attempt"))
    return _Attempts(
        current=max(job.attempt, stored or 1),
        checkpoint_at=time_of(checkpoint.get("at")) or job.checkpoint_at,
    )


def _may_resume(job: JobRecord, attempts: _Attempts) -> bool:
    return job.resumable and attempts.current < job.max_attempts and not _is_overdue(job)


def _with_attempts(message: str, job: JobRecord, attempts: _Attempts) -> str:
    if job.max_attempts <= 1:
        return message
    return f"{message} (attempt {attempts.current} of {job.max_attempts}; none left)"


def _resume(
    job: JobRecord,
    run: Pass,
    lease: Lease,
    session_shared: SessionShared,
    *,
    attempts: _Attempts,
    reason: str,
    handoff: bool = False,
) -> StoredJob:
    """Start the job again in a fresh session: one lease write (conditional on the job being
    where this poller saw it, so overlapping pollers never start two attempts), its history,
    the `resume` call, then a best-effort stop of the session it leaves. A handoff keeps the
    attempt; a loss uses one."""
    old_session = job.active_session_id or job.session_id
    attempt = attempts.current if handoff else attempts.current + 1
    # A session id is 33 to 256 characters (SessionType in the bedrock-agentcore service
    # model, 2024-02-28): 32 hex digits and the suffix, which shows the attempt in logs.
    fresh = f"{uuid.uuid4().hex}-r{attempt}"
    now = utc_now()
    resumed = lease.record_resume(session_id=fresh, at=now, attempt=attempt, seen=job)
    run.report.count(Metric.JOBS_HANDED_OFF if handoff else Metric.JOBS_RESUMED)
    logger.info(
        "job handed off to a fresh session" if handoff else "job resumed in a fresh session",
        extra={
            "job_id": job.job_id,
            "from_session": old_session,
            "session_id": fresh,
            "attempt": attempt,
            "reason": reason,
        },
    )
    left = Event(
        EventType.HANDED_OFF if handoff else EventType.SESSION_LOST,
        at=now,
        attempt=attempts.current,
        session_id=old_session,
        detail={"reason": reason},
    )
    run.record_event(job, left)
    run.record_event(
        job,
        Event(
            EventType.RESUMED,
            at=now,
            attempt=attempt,
            session_id=fresh,
            detail={"checkpoint_at": attempts.checkpoint_at, "handoff": handoff},
        ),
    )
    after = _send_resume(resumed, run, lease, session_shared)
    _leave_session(job, old_session, run, session_shared)
    return after


def _leave_session(
    job: JobRecord, session_id: str, run: Pass, session_shared: SessionShared
) -> None:
    """Stop the session a job has left, unless other jobs in flight use it. Best effort: an
    idle session ends by itself, and one still running the job is fenced off by the record
    (its next checkpoint finds the job moved)."""
    if session_shared(job):
        return
    try:
        run.stop_once(session_id)
    except StopSessionError as exc:
        logger.warning(
            "could not stop the session the job left",
            extra={"job_id": job.job_id, "session_id": session_id, "reason": str(exc)},
        )


def _send_resume(  # noqa: PLR0911
    job: StoredJob, run: Pass, lease: Lease, session_shared: SessionShared
) -> StoredJob:
    """Ask the job's fresh session to take it (`resume`), and act on the answer: taken (the
    pending flag cleared), refused for good (FAILED), or not answered (a failed poll; the
    next tick asks the same session again)."""
    if not isinstance(job, JobRecord):
        return job
    session_id = job.active_session_id or job.session_id
    reply = run.services.agent.ask(session_id, {"action": "resume", "job_id": job.job_id})
    run.report.count(Metric.JOBS_POLLED)
    if isinstance(reply, Busy):
        # The fresh session is still being created (a brief conflict), or, on a runtime that
        # refuses calls to a busy session, already runs the job: ask again next tick.
        logger.debug("fresh session busy", extra={"job_id": job.job_id, "code": reply.code})
        return job
    if isinstance(reply, Unreachable):
        return _resume_not_taken(job, run, lease, reply.reason)
    assert isinstance(reply, Replied)
    answer = read_resume_answer(reply.body, job.job_id)
    if isinstance(answer, ResumeRefused):
        logger.error(
            "the agent refused to resume the job",
            extra={"job_id": job.job_id, "session_id": session_id, "code": answer.error.code},
        )
        return _end(job, run, lease, Ending.failed(answer.error))
    if isinstance(answer, Unusable):
        run.report.count(Metric.BAD_ANSWERS)
        return _resume_not_taken(job, run, lease, f"unusable answer to resume: {answer.reason}")
    taken = job.evolve(resume_pending=False)
    running = answer.running
    if running is None:
        # It ended there already (this was a resume sent again): collect it now.
        lease.record_resume_taken(session_id, utc_now())
        return _advance(taken, run, lease, session_shared)
    lease.record_resume_taken(
        session_id,
        utc_now(),
        progress=running.progress,
        attempt=_later_attempt(job, running.attempt),
        checkpoint_at=running.checkpoint_at,
    )
    return taken


def _resume_not_taken(job: JobRecord, run: Pass, lease: Lease, reason: str) -> StoredJob:
    """A `resume` the fresh session did not answer: a failed poll; at the limit, the job's
    stored outcome decides if this attempt stored one, else it is LOST."""
    run.report.count(Metric.POLL_ERRORS)
    failures = lease.record_poll_failure(reason, utc_now())
    limit = run.services.settings.max_poll_failures
    logger.warning(
        "the fresh session did not take the job",
        extra={"job_id": job.job_id, "reason": reason, "failures": failures, "limit": limit},
    )
    if failures < limit:
        return job
    stored = _stored_outcome(job, run)
    if stored is not None:
        return _finish_from_answer(job, run, lease, stored)
    error = JobError.of(
        ErrorCode.SESSION_LOST,
        f"the job's fresh session did not take it: {failures} tries to resume it failed; "
        f"last: {reason}",
    )
    return _end(job, run, lease, Ending(JobStatus.LOST, error=error))


def _nears_max_lifetime(job: JobRecord, answer: StillRunning, run: Pass) -> bool:
    """Whether a resumable job's session is close enough to AgentCore's max lifetime to hand
    the job off now: the session's age counts from the earliest sign of its start (when the
    poller gave it the job, or when its process says it started). A job whose own deadline
    comes before the session's end is left where it is: it ends first."""
    if not job.resumable:
        return False
    settings = run.services.settings
    starts = [job.run_started_at or job.submitted_at, answer.session_started_at]
    moments: list[datetime] = []
    for text in starts:
        if text is None:
            continue
        try:
            moments.append(parse_time(text))
        except ValueError:
            continue
    if not moments:
        return False
    ends_at = min(moments) + timedelta(seconds=settings.session_max_lifetime_s)
    deadline = job.deadline()
    if deadline is not None and deadline <= ends_at:
        return False
    return datetime.now(UTC) >= ends_at - timedelta(seconds=settings.handoff_margin_s)


def _hand_off(
    job: JobRecord,
    run: Pass,
    lease: Lease,
    session_shared: SessionShared,
    answer: StillRunning,
) -> StoredJob:
    """Move a resumable job whose session nears its max lifetime to a fresh session, keeping
    its attempt: `suspend` in the old session (the job may store a last checkpoint), then a
    resume in a fresh one, then the old session is stopped."""
    session_id = job.active_session_id or job.session_id
    reply = run.services.agent.ask(session_id, {"action": "suspend", "job_id": job.job_id})
    if isinstance(reply, Replied):
        refused = read_resume_answer(reply.body, job.job_id)
        if isinstance(refused, ResumeRefused) and refused.error.code == ErrorCode.NOT_RESUMABLE:
            # The agent knows better than the record: the job stays where it is, and ends at
            # the session's lifetime as any job that is not resumable would.
            logger.error(
                "the agent refused to suspend a job its record says is resumable",
                extra={"job_id": job.job_id, "session_id": session_id},
            )
            lease.record_progress(answer.progress, utc_now())
            return job
    # Whatever it answered, the job may have ended just before: its outcome then decides.
    stored = _stored_outcome(job, run)
    if stored is not None:
        return _finish_from_answer(job, run, lease, stored)
    reason = "the session neared its max lifetime"
    attempts = _attempts(job, run)
    return _resume(job, run, lease, session_shared, attempts=attempts, reason=reason, handoff=True)


def _later_attempt(job: StoredJob, attempt: int | None) -> int | None:
    """`attempt` when it is later than a resumable record's (to be written), else None."""
    if not isinstance(job, JobRecord) or not job.resumable:
        return None
    if attempt is None or attempt <= job.attempt:
        return None
    return attempt


def _is_stale(job: StoredJob, answer: Finished) -> bool:
    """An outcome of an attempt before the record's: the job has moved on since."""
    current = job.attempt if isinstance(job, JobRecord) else 1
    return answer.attempt is not None and answer.attempt < current


def _record_refused(
    job: StoredJob,
    run: Pass,
    lease: Lease,
    exc: RecordRefusedError,
    *,
    still_running: bool = False,
) -> StoredJob:
    """The table refused what the agent's answer asked to store: end the job FAILED with a
    short error of ours instead (and an empty progress message, in case that was the part
    refused). Retrying the same write every tick would keep the job, and its session, alive
    for good. A refusal of this small write too is left to the next tick."""
    logger.error(
        "the job table refused the job's outcome; it ends with a short error instead",
        extra={"job_id": job.job_id, "reason": str(exc), "cause": _cause(exc)},
    )
    run.report.count(Metric.RECORDS_REFUSED)
    error = JobError.of(
        ErrorCode.RECORD_REFUSED,
        "the job table refused the job's outcome as the agent answered it (too large, or a "
        "value it does not accept)",
    )
    finished = _end(job, run, lease, Ending(JobStatus.FAILED, error=error, progress=Progress()))
    if still_running and job.active_session_id is not None:
        # As at a deadline: a session shared with other jobs is not stopped, so ask the agent
        # to stop the work itself. Whatever it answers, the record is already final.
        run.services.agent.ask(job.active_session_id, {"action": "cancel", "job_id": job.job_id})
    return finished


def _cause(exc: Exception) -> str:
    cause = exc.__cause__
    if cause is None:
        return ""
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code', '')}: {str(error.get('Message', ''))[:200]}"
    return type(cause).__name__


def _finish_from_answer(job: StoredJob, run: Pass, lease: Lease, answer: Finished) -> StoredJob:
    """End the job as the agent's final answer says, once its result is where it belongs
    (and with the attempt that ended, when the agent retried the job since the last poll)."""
    ending = replace(_ending_of(job, run, answer), attempt=_later_attempt(job, answer.attempt))
    return _end(job, run, lease, ending)


def _ending_of(job: StoredJob, run: Pass, answer: Finished) -> Ending:
    results = run.services.results
    own_uri = results.uri(schema.result_key(job.job_id))
    at = answer.finished_at
    if answer.status == JobStatus.SUCCEEDED and answer.result_uri is not None:
        if answer.result_uri != own_uri:
            # Only the job's own result object may be pointed to: any other key in the bucket
            # would hand the job's readers another job's data (or a caller's input).
            logger.error(
                "result_uri is not the job's own result object",
                extra={"job_id": job.job_id, "result_uri": answer.result_uri[:300]},
            )
            run.report.count(Metric.BAD_ANSWERS)
            error = JobError.of(
                ErrorCode.RESULT_REFUSED,
                f"the agent pointed to a result that is not this job's own; expected {own_uri}",
            )
            return Ending.failed(error, finished_at=at)
        if not results.exists(answer.result_uri):
            logger.error(
                "result_uri points to a missing object",
                extra={"job_id": job.job_id, "result_uri": answer.result_uri},
            )
            run.report.count(Metric.BAD_ANSWERS)
            error = JobError.of(ErrorCode.RESULT_MISSING, f"the result at {own_uri} does not exist")
            return Ending.failed(error, finished_at=at)
        return Ending(answer.status, result_uri=own_uri, finished_at=at, progress=answer.progress)
    if answer.status == JobStatus.SUCCEEDED:
        encoded = encode_json(answer.result).encode()
        if len(encoded) > INLINE_RESULT_LIMIT:
            # Too big for the record: keep it in S3 and point to it, as the agent would.
            logger.warning(
                "inline result too large for the record; stored in S3",
                extra={"job_id": job.job_id, "bytes": len(encoded)},
            )
            try:
                uri = results.put_result_once(job.job_id, encoded)
            except ResultConflictError as exc:
                logger.error("a different result is already stored", extra={"job_id": job.job_id})
                run.report.count(Metric.BAD_ANSWERS)
                error = JobError.of(
                    ErrorCode.RESULT_REFUSED, f"the agent answered a result, but {exc}"
                )
                return Ending.failed(error, finished_at=at)
            return Ending(answer.status, result_uri=uri, finished_at=at, progress=answer.progress)
    return Ending(
        answer.status,
        result=answer.result,
        error=answer.error,
        finished_at=at,
        progress=answer.progress,
    )


def _stored_outcome(job: StoredJob, run: Pass) -> Finished | None:
    """The job's durable outcome in S3, when the agent stored a usable one of the current
    attempt (an earlier attempt's is stale: the job was resumed after it)."""
    outcome = run.services.results.get_outcome(job.job_id)
    stored = read_outcome(outcome, job.job_id) if outcome is not None else None
    if not isinstance(stored, Finished) or _is_stale(job, stored):
        return None
    return stored


def _time_out(job: StoredJob, run: Pass, lease: Lease) -> StoredJob:
    # A job that ended (and stored its outcome) before its session stopped answering is not
    # timed out: found past its deadline with no usable answer, the outcome decides.
    stored = _stored_outcome(job, run)
    if stored is not None:
        logger.info(
            "past its deadline; the stored outcome ends the job", extra={"job_id": job.job_id}
        )
        return _finish_from_answer(job, run, lease, stored)
    limit = f"{job.max_runtime_s:g} s" if job.max_runtime_s else "its limit"
    logger.warning("job ran past its deadline", extra={"job_id": job.job_id})
    error = JobError.of(ErrorCode.TIMED_OUT, f"the job ran longer than {limit}")
    finished = _end(job, run, lease, Ending(JobStatus.TIMED_OUT, error=error))
    if job.active_session_id is not None:
        # Best effort: a session shared with other jobs is not stopped, so ask the agent to
        # stop the work itself. Whatever it answers, the record is already final.
        run.services.agent.ask(job.active_session_id, {"action": "cancel", "job_id": job.job_id})
    return finished


def _poll_failed(
    job: JobRecord,
    run: Pass,
    lease: Lease,
    session_shared: SessionShared,
    *,
    reason: str,
    overdue: bool,
) -> StoredJob:
    run.report.count(Metric.POLL_ERRORS)
    if overdue:
        return _time_out(job, run, lease)
    failures = lease.record_poll_failure(reason, utc_now())
    limit = run.services.settings.max_poll_failures
    logger.warning(
        "poll failed",
        extra={"job_id": job.job_id, "reason": reason, "failures": failures, "limit": limit},
    )
    if failures < limit:
        return job
    # The session cannot answer, but the job may have ended and stored its outcome first
    # (an agent crash-looping after its job finished): the outcome, not the polls, decides.
    stored = _stored_outcome(job, run)
    if stored is not None:
        logger.info("polls failed; the stored outcome ends the job", extra={"job_id": job.job_id})
        return _finish_from_answer(job, run, lease, stored)
    why = f"{failures} polls in a row failed; last: {reason}"
    attempts = _attempts(job, run)
    if _may_resume(job, attempts):
        return _resume(job, run, lease, session_shared, attempts=attempts, reason=why)
    error = JobError.of(ErrorCode.POLL_FAILED, _with_attempts(why, job, attempts))
    ending = Ending.failed(error)
    later = _later_attempt(job, attempts.current)
    return _end(job, run, lease, replace(ending, attempt=later) if later else ending)


def _end(job: StoredJob, run: Pass, lease: Lease, ending: Ending) -> StoredJob:
    """The one place a job's end is written: its terminal status, counted and logged."""
    now = utc_now()
    finished = lease.finish(ending, finished_at=_valid_time(ending.finished_at) or now, at=now)
    run.report.count(FINISHED_METRIC[ending.status])
    detail: dict[str, str | None] = {"status": str(ending.status)}
    if ending.error is not None:
        detail["error_code"] = ending.error.code
    attempt = finished.attempt if isinstance(finished, JobRecord) else 1
    ended = Event(
        EventType.ENDED,
        at=now,
        attempt=attempt,
        session_id=finished.active_session_id,
        detail=detail,
    )
    run.record_event(finished, ended)
    logger.info(
        "job finished",
        extra={
            "job_id": job.job_id,
            "session_id": job.active_session_id,
            "status": str(ending.status),
        },
    )
    return finished


def _notify(job: StoredJob, run: Pass, lease: Lease, *, release: bool = False) -> StoredJob:
    """Publish the job's notification. One that SNS refuses for its content is published again
    without the job's own text; when even that is refused, the job is recorded as refused
    (`notify_error`) and closed like a notified one, rather than refused every tick."""
    notifier = run.services.notifier
    notification = Notification.from_record(
        job, email_preview=run.services.settings.email_result_preview
    )
    try:
        notifier.publish(notification)
    except NotifyRefusedError as exc:
        logger.warning(
            "SNS refused the notification; publishing it without the job's text",
            extra={"job_id": job.job_id, "reason": str(exc), "cause": _cause(exc)},
        )
        try:
            notifier.publish(notification.shortened())
        except NotifyRefusedError as again:
            logger.error(
                "SNS refused even the shortened notification; the job is closed un-notified",
                extra={"job_id": job.job_id, "reason": str(again), "cause": _cause(again)},
            )
            run.report.count(Metric.NOTIFICATIONS_REFUSED)
            error = JobError.of(
                ErrorCode.NOTIFY_REFUSED,
                "SNS refused the job's notification, even without the job's own text",
            )
            refused = lease.record_notify_refused(error, utc_now(), release=release)
            _notified_event(run, refused, error.code)
            return refused
    run.report.count(Metric.NOTIFICATIONS_SENT)
    notified = lease.record_notified(utc_now(), release=release)
    _notified_event(run, notified, None)
    return notified


def _notified_event(run: Pass, job: StoredJob, refused_code: str | None) -> None:
    detail: dict[str, str | None] = {"status": str(job.status)}
    if refused_code is not None:
        detail["error_code"] = refused_code
    attempt = job.attempt if isinstance(job, JobRecord) else 1
    run.record_event(job, Event(EventType.NOTIFIED, attempt=attempt, detail=detail))


_TIME_CHARS = len("2026-01-01T00:00:00.000000+00:00")


def _valid_time(text: str | None) -> str | None:
    """An agent's time string when it is one (a protocol time, short), else None."""
    if text is None or len(text) > _TIME_CHARS:
        return None
    try:
        parse_time(text)
    except ValueError:
        return None
    return text


def _is_overdue(job: StoredJob) -> bool:
    deadline = job.deadline()
    return deadline is not None and datetime.now(UTC) > deadline
