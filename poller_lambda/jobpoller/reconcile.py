"""Reconcile one job with its session: poll, record, notify once, stop the spent session."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from agentjobs import schema
from agentjobs.notifier import Notification, NotifyError, NotifyRefusedError
from agentjobs.protocol import ErrorCode, JobStatus, encode_json, parse_time, utc_now
from agentjobs.record import INLINE_RESULT_LIMIT, JobError, MalformedRecord, Progress, StoredJob
from agentjobs.store import (
    RecordRefusedError,
    ResultConflictError,
    StoreError,
    TransitionConflictError,
)
from jobpoller.agentcore import Busy, Replied, StopSessionError, Unreachable
from jobpoller.answers import Finished, NotKnown, StillRunning, Unusable, read_answer
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
                job = _advance(job, run, lease)
            except RecordRefusedError as exc:
                job = _record_refused(job, run, lease, exc)
            if not job.is_terminal:
                run.report.step(job_id, "running")
                return job
        shared = job.session_id is not None and session_shared(job)
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
            extra={"job_id": job_id, "session_id": job.session_id, "reason": str(exc)},
        )
        run.retry_later(job_id)
        return job
    finally:
        _release(lease)


def stop_spent_session(job: StoredJob, run: Pass, lease: Lease) -> None:
    """Stop the session of a finished, notified job, then take the job off the attention
    index. A session that is already gone counts as stopped."""
    if job.session_id is not None:
        run.stop_once(job.session_id)
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


def _advance(job: StoredJob, run: Pass, lease: Lease) -> StoredJob:  # noqa: PLR0911
    """Poll an unfinished job and act on the answer (a progress write gives the lease back)."""
    if isinstance(job, MalformedRecord):
        logger.error("malformed job record", extra={"job_id": job.job_id, "reason": job.problem})
        run.report.count(Metric.BAD_RECORDS)
        run.report.count(Metric.POLL_ERRORS)
        error = JobError(INVALID_RECORD, f"the job record is malformed: {job.problem}")
        return _end(job, run, lease, Ending.failed(error))
    overdue = _is_overdue(job)
    reply = run.services.agent.ask(job.session_id, {"action": "result", "job_id": job.job_id})
    run.report.count(Metric.JOBS_POLLED)
    if isinstance(reply, Busy):
        if overdue:
            return _time_out(job, run, lease)
        logger.debug("session busy", extra={"job_id": job.job_id, "code": reply.code})
        return job
    if isinstance(reply, Unreachable):
        return _poll_failed(job, run, lease, reply.reason, overdue)
    assert isinstance(reply, Replied)
    answer = read_answer(reply.body, job.job_id)
    if isinstance(answer, NotKnown):
        return _recover(job, run, lease)
    if isinstance(answer, Unusable):
        run.report.count(Metric.BAD_ANSWERS)
        return _poll_failed(job, run, lease, f"unusable answer: {answer.reason}", overdue)
    if isinstance(answer, StillRunning):
        if overdue:
            return _time_out(job, run, lease)
        try:
            lease.record_progress(answer.progress, utc_now())
        except RecordRefusedError as exc:
            return _record_refused(job, run, lease, exc, still_running=True)
        return job
    return _finish_from_answer(job, run, lease, answer)


def _recover(job: StoredJob, run: Pass, lease: Lease) -> StoredJob:
    """The session no longer knows the job: take its durable outcome, or declare it LOST."""
    outcome = run.services.results.get_outcome(job.job_id)
    if outcome is None:
        logger.warning(
            "session recycled and no stored outcome: job lost",
            extra={"job_id": job.job_id, "session_id": job.session_id},
        )
        error = JobError.of(
            ErrorCode.SESSION_LOST,
            "the job's session was recycled before the job stored its outcome",
        )
        return _end(job, run, lease, Ending(JobStatus.LOST, error=error))
    answer = read_outcome(outcome, job.job_id)
    if isinstance(answer, Finished):
        logger.info("recovered the stored outcome", extra={"job_id": job.job_id})
        return _finish_from_answer(job, run, lease, answer)
    reason = answer.reason if isinstance(answer, Unusable) else "it is not a finished job"
    run.report.count(Metric.BAD_ANSWERS)
    error = JobError.of(
        ErrorCode.SESSION_LOST,
        f"the session was recycled and the stored outcome is unusable: {reason}",
    )
    return _end(job, run, lease, Ending(JobStatus.LOST, error=error))


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
    if still_running and job.session_id is not None:
        # As at a deadline: a session shared with other jobs is not stopped, so ask the agent
        # to stop the work itself. Whatever it answers, the record is already final.
        run.services.agent.ask(job.session_id, {"action": "cancel", "job_id": job.job_id})
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
    """End the job as the agent's final answer says, once its result is where it belongs."""
    return _end(job, run, lease, _ending_of(job, run, answer))


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
    """The job's durable outcome in S3, when the agent stored a usable one."""
    outcome = run.services.results.get_outcome(job.job_id)
    stored = read_outcome(outcome, job.job_id) if outcome is not None else None
    return stored if isinstance(stored, Finished) else None


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
    if job.session_id is not None:
        # Best effort: a session shared with other jobs is not stopped, so ask the agent to
        # stop the work itself. Whatever it answers, the record is already final.
        run.services.agent.ask(job.session_id, {"action": "cancel", "job_id": job.job_id})
    return finished


def _poll_failed(job: StoredJob, run: Pass, lease: Lease, reason: str, overdue: bool) -> StoredJob:
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
    error = JobError.of(ErrorCode.POLL_FAILED, f"{failures} polls in a row failed; last: {reason}")
    return _end(job, run, lease, Ending.failed(error))


def _end(job: StoredJob, run: Pass, lease: Lease, ending: Ending) -> StoredJob:
    """The one place a job's end is written: its terminal status, counted and logged."""
    now = utc_now()
    finished = lease.finish(ending, finished_at=_valid_time(ending.finished_at) or now, at=now)
    run.report.count(FINISHED_METRIC[ending.status])
    logger.info(
        "job finished",
        extra={"job_id": job.job_id, "session_id": job.session_id, "status": str(ending.status)},
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
            return lease.record_notify_refused(error, utc_now(), release=release)
    run.report.count(Metric.NOTIFICATIONS_SENT)
    return lease.record_notified(utc_now(), release=release)


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
