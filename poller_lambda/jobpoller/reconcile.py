"""Reconcile one job with its session: poll, record, notify once, stop the spent session."""

from __future__ import annotations

from dataclasses import replace

from aws_lambda_powertools import Logger

from agentjobs.history import Event, EventType
from agentjobs.notifier import Notification, NotifyError, NotifyRefusedError
from agentjobs.protocol import ErrorCode, JobStatus, utc_now
from agentjobs.record import JobError, JobRecord, MalformedRecord, Progress, StoredJob
from agentjobs.store import RecordRefusedError, StoreError, TransitionConflictError
from jobpoller.agentcore import Busy, Replied, StopSessionError, Unreachable
from jobpoller.answers import Finished, NotKnown, StillRunning, Unusable, read_answer
from jobpoller.answers import read_answer_object as read_outcome
from jobpoller.attempts import (
    Attempts,
    is_overdue,
    is_stale,
    later_attempt,
    may_resume,
    with_attempts,
)
from jobpoller.lease import Ending, Lease, close_final
from jobpoller.outcome import end_job, finish_from_answer, stored_outcome
from jobpoller.report import Metric
from jobpoller.resume import Collect, hand_off, nears_max_lifetime, resume, send_resume
from jobpoller.services import Pass, SessionShared

logger = Logger(service="poller", child=True)

INVALID_RECORD = "INVALID_RECORD"
"""Error code of a job whose record is not a valid job record (the protocol has none)."""


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
        return end_job(job, run, lease, Ending.failed(error))
    overdue = is_overdue(job)
    if job.resume_pending:
        if overdue:
            return _time_out(job, run, lease)
        # The fresh session never said it took the job: ask it again, never a new attempt.
        return send_resume(job, run, lease, _collect_with(run, lease, session_shared))
    session_id = job.active_session_id or job.session_id
    reply = run.ask_job(session_id, job.job_id)
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
    if isinstance(answer, Finished) and is_stale(job, answer):
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
    return finish_from_answer(job, run, lease, answer)


def _collect_with(run: Pass, lease: Lease, session_shared: SessionShared) -> Collect:
    """The main path again, for a resume that finds the job already ended in its fresh
    session."""
    return lambda taken: _advance(taken, run, lease, session_shared)


def _still_running(
    job: JobRecord, run: Pass, lease: Lease, session_shared: SessionShared, answer: StillRunning
) -> StoredJob:
    """A RUNNING answer: hand the job off if its session nears its max lifetime, else record
    its progress (and a resumable job's attempt and last checkpoint time)."""
    if nears_max_lifetime(job, answer, run):
        collect = _collect_with(run, lease, session_shared)
        return hand_off(job, run, lease, session_shared, answer, collect=collect)
    try:
        lease.record_progress(
            answer.progress,
            utc_now(),
            attempt=later_attempt(job, answer.attempt),
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
    if isinstance(answer, Finished) and not is_stale(job, answer):
        logger.info("recovered the stored outcome", extra={"job_id": job.job_id})
        return finish_from_answer(job, run, lease, answer)
    if isinstance(answer, Finished):
        logger.warning(
            "the stored outcome is an earlier attempt's; it is ignored",
            extra={"job_id": job.job_id, "attempt": job.attempt, "stored": answer.attempt},
        )
    elif answer is not None:
        run.report.count(Metric.BAD_ANSWERS)
    reason = "the session no longer knew the job and no outcome of this attempt was stored"
    attempts = Attempts.of(job, run.services.results)
    if may_resume(job, attempts):
        collect = _collect_with(run, lease, session_shared)
        return resume(
            job, run, lease, session_shared, attempts=attempts, reason=reason, collect=collect
        )
    if answer is None or isinstance(answer, Finished):
        logger.warning(
            "session recycled and no stored outcome: job lost",
            extra={"job_id": job.job_id, "session_id": job.active_session_id},
        )
        message = "the job's session was recycled before the job stored its outcome"
    else:
        problem = answer.reason if isinstance(answer, Unusable) else "it is not a finished job"
        message = f"the session was recycled and the stored outcome is unusable: {problem}"
    error = JobError.of(ErrorCode.SESSION_LOST, with_attempts(message, job, attempts))
    ending = Ending(JobStatus.LOST, error=error, attempt=later_attempt(job, attempts.current))
    return end_job(job, run, lease, ending)


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
    finished = end_job(job, run, lease, Ending(JobStatus.FAILED, error=error, progress=Progress()))
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


def _time_out(job: StoredJob, run: Pass, lease: Lease) -> StoredJob:
    # A job that ended (and stored its outcome) before its session stopped answering is not
    # timed out: found past its deadline with no usable answer, the outcome decides.
    stored = stored_outcome(job, run)
    if stored is not None:
        logger.info(
            "past its deadline; the stored outcome ends the job", extra={"job_id": job.job_id}
        )
        return finish_from_answer(job, run, lease, stored)
    limit = f"{job.max_runtime_s:g} s" if job.max_runtime_s else "its limit"
    logger.warning("job ran past its deadline", extra={"job_id": job.job_id})
    error = JobError.of(ErrorCode.TIMED_OUT, f"the job ran longer than {limit}")
    finished = end_job(job, run, lease, Ending(JobStatus.TIMED_OUT, error=error))
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
    stored = stored_outcome(job, run)
    if stored is not None:
        logger.info("polls failed; the stored outcome ends the job", extra={"job_id": job.job_id})
        return finish_from_answer(job, run, lease, stored)
    why = f"{failures} polls in a row failed; last: {reason}"
    attempts = Attempts.of(job, run.services.results)
    if may_resume(job, attempts):
        collect = _collect_with(run, lease, session_shared)
        return resume(
            job, run, lease, session_shared, attempts=attempts, reason=why, collect=collect
        )
    error = JobError.of(ErrorCode.POLL_FAILED, with_attempts(why, job, attempts))
    ending = Ending.failed(error)
    later = later_attempt(job, attempts.current)
    return end_job(job, run, lease, replace(ending, attempt=later) if later else ending)


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
