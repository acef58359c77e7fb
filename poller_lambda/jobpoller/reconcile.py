"""Reconcile one job with its session: poll, record, notify once, stop the spent session."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from agentjobs import schema
from agentjobs.notifier import Notifier, NotifyError, NotifyRefusedError
from agentjobs.protocol import ErrorCode, JobStatus, encode_json, parse_time, utc_now
from agentjobs.record import INLINE_RESULT_LIMIT, JobError, Progress
from agentjobs.store import (
    JobStore,
    RecordRefusedError,
    ResultConflictError,
    ResultStore,
    StoreError,
    TransitionConflictError,
)
from jobpoller.agentcore import AgentRuntime, Busy, Replied, StopSessionError, Unreachable
from jobpoller.answers import Finished, NotKnown, StillRunning, Unusable, read_answer
from jobpoller.answers import read_answer_object as read_outcome
from jobpoller.report import FINISHED_METRIC, Metric, TickReport
from jobpoller.settings import PollerSettings
from jobpoller.view import JobView

logger = Logger(service="poller", child=True)

INVALID_RECORD = "INVALID_RECORD"
"""Error code of a job whose record is not a valid job record (the protocol has none)."""


@dataclass(frozen=True)
class PollerServices:
    """The AWS-facing adapters the poller works through, built once per Lambda container."""

    store: JobStore
    results: ResultStore
    agent: AgentRuntime
    notifier: Notifier
    settings: PollerSettings


@dataclass
class Pass:
    """One run of the poller over some jobs (a tick, or a fast-path call): who holds the
    leases, what was counted, and which sessions this run has already stopped."""

    services: PollerServices
    holder: str
    report: TickReport = field(default_factory=TickReport)
    _stopped: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stop_once(self, session_id: str) -> None:
        """Stop a session unless this run already did (jobs of one session share it)."""
        with self._lock:
            if session_id in self._stopped:
                return
        if self.services.agent.stop_session(session_id):
            self.report.count(Metric.SESSIONS_STOPPED)
        with self._lock:
            self._stopped.add(session_id)


SessionShared = Callable[[JobView], bool]
"""Whether other jobs in flight use this job's session, so it must not be stopped yet."""


def reconcile(job_id: str, run: Pass, session_shared: SessionShared) -> JobView | None:  # noqa: PLR0911
    """Take the job's lease and move it as far as it can go now. Returns the job as this run
    left it, or None when another poller holds it or it needs nothing. Never raises for a
    failure of this one job: it is logged, counted and left for the next tick."""
    store, holder = run.services.store, run.holder
    try:
        item = store.acquire_lease(job_id, holder, run.services.settings.lease_s)
    except StoreError:
        logger.exception("could not lease the job", extra={"job_id": job_id})
        run.report.count(Metric.POLL_ERRORS)
        run.report.step(job_id, "retry")
        return None
    if item is None:
        run.report.step(job_id, "skipped")
        return None
    leased = True
    view = JobView.from_item(item)
    try:
        if not view.is_terminal:
            try:
                view, leased = _advance(view, run)
            except RecordRefusedError as exc:
                view = _record_refused(view, run, exc)
            if not view.is_terminal:
                run.report.step(job_id, "running")
                return view
        shared = view.session_id is not None and session_shared(view)
        if view.needs_notification:
            # A job that will wait for its shared session gives its lease back in the same
            # write that records the notification.
            view = _notify(view, run, release=shared)
            leased = not shared
        if shared:
            run.report.step(job_id, "awaiting-session")
            return view
        stop_spent_session(view, run)
        leased = False
        run.report.step(job_id, "closed")
        return view
    except TransitionConflictError:
        # Our lease expired and another poller moved the job: it is theirs now.
        logger.warning("the job changed under this poller", extra={"job_id": job_id})
        run.report.step(job_id, "conflict")
        leased = False
        return None
    except (StoreError, NotifyError, StopSessionError) as exc:
        logger.warning(
            "a step failed; the next tick resumes it",
            extra={"job_id": job_id, "session_id": view.session_id, "reason": str(exc)},
        )
        run.report.count(Metric.POLL_ERRORS)
        run.report.step(job_id, "retry")
        return view
    finally:
        if leased:
            _release(store, job_id, holder)


def stop_spent_session(view: JobView, run: Pass) -> None:
    """Stop the session of a finished, notified job, then take the job off the attention
    index. A session that is already gone counts as stopped."""
    if view.session_id is not None:
        run.stop_once(view.session_id)
    run.services.store.record_session_stopped(view.job_id, run.holder, utc_now())


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
        run.report.count(Metric.POLL_ERRORS)
        for job_id in job_ids:
            run.report.step(job_id, "retry")
        return
    for job_id in job_ids:
        try:
            run.services.store.close_final(job_id, run.holder, utc_now())
        except TransitionConflictError:
            run.report.step(job_id, "skipped")
            continue
        except StoreError:
            logger.warning("could not close the job", extra={"job_id": job_id})
            run.report.count(Metric.POLL_ERRORS)
            run.report.step(job_id, "retry")
            continue
        run.report.step(job_id, "closed")


def _release(store: JobStore, job_id: str, holder: str) -> None:
    try:
        store.release_lease(job_id, holder)
    except StoreError:
        # The lease expires by itself; the job only waits a little longer.
        logger.warning("could not release the lease", extra={"job_id": job_id})


def _advance(view: JobView, run: Pass) -> tuple[JobView, bool]:  # noqa: PLR0911
    """Poll an unfinished job and act on the answer; returns the job and whether we still
    hold its lease (a progress write releases it)."""
    if view.problem is not None or view.session_id is None:
        logger.error("malformed job record", extra={"job_id": view.job_id, "reason": view.problem})
        run.report.count(Metric.BAD_RECORDS)
        run.report.count(Metric.POLL_ERRORS)
        error = JobError(INVALID_RECORD, f"the job record is malformed: {view.problem}")
        return _finish(view, run, JobStatus.FAILED, error=error), True
    overdue = _is_overdue(view)
    reply = run.services.agent.ask(view.session_id, {"action": "result", "job_id": view.job_id})
    run.report.count(Metric.JOBS_POLLED)
    if isinstance(reply, Busy):
        if overdue:
            return _time_out(view, run), True
        logger.debug("session busy", extra={"job_id": view.job_id, "code": reply.code})
        return view, True
    if isinstance(reply, Unreachable):
        return _poll_failed(view, run, reply.reason, overdue), True
    assert isinstance(reply, Replied)
    answer = read_answer(reply.body, view.job_id)
    if isinstance(answer, NotKnown):
        return _recover(view, run), True
    if isinstance(answer, Unusable):
        run.report.count(Metric.BAD_ANSWERS)
        return _poll_failed(view, run, f"unusable answer: {answer.reason}", overdue), True
    if isinstance(answer, StillRunning):
        if overdue:
            return _time_out(view, run), True
        try:
            run.services.store.record_progress(view.job_id, run.holder, answer.progress, utc_now())
        except RecordRefusedError as exc:
            return _record_refused(view, run, exc, still_running=True), True
        return view, False
    return _finish_from_answer(view, run, answer), True


def _recover(view: JobView, run: Pass) -> JobView:
    """The session no longer knows the job: take its durable outcome, or declare it LOST."""
    outcome = run.services.results.get_outcome(view.job_id)
    if outcome is None:
        logger.warning(
            "session recycled and no stored outcome: job lost",
            extra={"job_id": view.job_id, "session_id": view.session_id},
        )
        error = JobError.of(
            ErrorCode.SESSION_LOST,
            "the job's session was recycled before the job stored its outcome",
        )
        return _finish(view, run, JobStatus.LOST, error=error)
    answer = read_outcome(outcome, view.job_id)
    if isinstance(answer, Finished):
        logger.info("recovered the stored outcome", extra={"job_id": view.job_id})
        return _finish_from_answer(view, run, answer)
    reason = answer.reason if isinstance(answer, Unusable) else "it is not a finished job"
    run.report.count(Metric.BAD_ANSWERS)
    error = JobError.of(
        ErrorCode.SESSION_LOST,
        f"the session was recycled and the stored outcome is unusable: {reason}",
    )
    return _finish(view, run, JobStatus.LOST, error=error)


def _record_refused(
    view: JobView, run: Pass, exc: RecordRefusedError, *, still_running: bool = False
) -> JobView:
    """The table refused what the agent's answer asked to store: end the job FAILED with a
    short error of ours instead (and an empty progress message, in case that was the part
    refused). Retrying the same write every tick would keep the job, and its session, alive
    for good. A refusal of this small write too is left to the next tick."""
    logger.error(
        "the job table refused the job's outcome; it ends with a short error instead",
        extra={"job_id": view.job_id, "reason": str(exc), "cause": _cause(exc)},
    )
    run.report.count(Metric.RECORDS_REFUSED)
    error = JobError.of(
        ErrorCode.RECORD_REFUSED,
        "the job table refused the job's outcome as the agent answered it (too large, or a "
        "value it does not accept)",
    )
    finished = _finish(view, run, JobStatus.FAILED, error=error, progress=Progress())
    if still_running and view.session_id is not None:
        # As at a deadline: a session shared with other jobs is not stopped, so ask the agent
        # to stop the work itself. Whatever it answers, the record is already final.
        run.services.agent.ask(view.session_id, {"action": "cancel", "job_id": view.job_id})
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


def _finish_from_answer(view: JobView, run: Pass, answer: Finished) -> JobView:
    results = run.services.results
    own_uri = results.uri(schema.result_key(view.job_id))
    if answer.status == JobStatus.SUCCEEDED and answer.result_uri is not None:
        if answer.result_uri != own_uri:
            # Only the job's own result object may be pointed to: any other key in the bucket
            # would hand the job's readers another job's data (or a caller's input).
            logger.error(
                "result_uri is not the job's own result object",
                extra={"job_id": view.job_id, "result_uri": answer.result_uri[:300]},
            )
            run.report.count(Metric.BAD_ANSWERS)
            error = JobError.of(
                ErrorCode.RESULT_REFUSED,
                f"the agent pointed to a result that is not this job's own; expected {own_uri}",
            )
            return _finish(view, run, JobStatus.FAILED, error=error, finished_at=answer.finished_at)
        if not results.exists(answer.result_uri):
            logger.error(
                "result_uri points to a missing object",
                extra={"job_id": view.job_id, "result_uri": answer.result_uri},
            )
            run.report.count(Metric.BAD_ANSWERS)
            error = JobError.of(ErrorCode.RESULT_MISSING, f"the result at {own_uri} does not exist")
            return _finish(view, run, JobStatus.FAILED, error=error, finished_at=answer.finished_at)
        return _finish(
            view,
            run,
            answer.status,
            result_uri=own_uri,
            finished_at=answer.finished_at,
            progress=answer.progress,
        )
    if answer.status == JobStatus.SUCCEEDED:
        encoded = encode_json(answer.result).encode()
        if len(encoded) > INLINE_RESULT_LIMIT:
            # Too big for the record: keep it in S3 and point to it, as the agent would.
            logger.warning(
                "inline result too large for the record; stored in S3",
                extra={"job_id": view.job_id, "bytes": len(encoded)},
            )
            try:
                uri = results.put_result_once(view.job_id, encoded)
            except ResultConflictError as exc:
                logger.error("a different result is already stored", extra={"job_id": view.job_id})
                run.report.count(Metric.BAD_ANSWERS)
                error = JobError.of(
                    ErrorCode.RESULT_REFUSED, f"the agent answered a result, but {exc}"
                )
                return _finish(
                    view, run, JobStatus.FAILED, error=error, finished_at=answer.finished_at
                )
            return _finish(
                view,
                run,
                answer.status,
                result_uri=uri,
                finished_at=answer.finished_at,
                progress=answer.progress,
            )
    return _finish(
        view,
        run,
        answer.status,
        result=answer.result,
        error=answer.error,
        finished_at=answer.finished_at,
        progress=answer.progress,
    )


def _stored_outcome(view: JobView, run: Pass) -> Finished | None:
    """The job's durable outcome in S3, when the agent stored a usable one."""
    outcome = run.services.results.get_outcome(view.job_id)
    stored = read_outcome(outcome, view.job_id) if outcome is not None else None
    return stored if isinstance(stored, Finished) else None


def _time_out(view: JobView, run: Pass) -> JobView:
    # A job that ended (and stored its outcome) before its session stopped answering is not
    # timed out: found past its deadline with no usable answer, the outcome decides.
    stored = _stored_outcome(view, run)
    if stored is not None:
        logger.info(
            "past its deadline; the stored outcome ends the job", extra={"job_id": view.job_id}
        )
        return _finish_from_answer(view, run, stored)
    limit = f"{view.max_runtime_s:g} s" if view.max_runtime_s else "its limit"
    logger.warning("job ran past its deadline", extra={"job_id": view.job_id})
    finished = _finish(
        view,
        run,
        JobStatus.TIMED_OUT,
        error=JobError.of(ErrorCode.TIMED_OUT, f"the job ran longer than {limit}"),
    )
    if view.session_id is not None:
        # Best effort: a session shared with other jobs is not stopped, so ask the agent to
        # stop the work itself. Whatever it answers, the record is already final.
        run.services.agent.ask(view.session_id, {"action": "cancel", "job_id": view.job_id})
    return finished


def _poll_failed(view: JobView, run: Pass, reason: str, overdue: bool) -> JobView:
    run.report.count(Metric.POLL_ERRORS)
    if overdue:
        return _time_out(view, run)
    failures = run.services.store.record_poll_failure(view.job_id, run.holder, reason, utc_now())
    limit = run.services.settings.max_poll_failures
    logger.warning(
        "poll failed",
        extra={"job_id": view.job_id, "reason": reason, "failures": failures, "limit": limit},
    )
    if failures < limit:
        return view
    # The session cannot answer, but the job may have ended and stored its outcome first
    # (an agent crash-looping after its job finished): the outcome, not the polls, decides.
    stored = _stored_outcome(view, run)
    if stored is not None:
        logger.info("polls failed; the stored outcome ends the job", extra={"job_id": view.job_id})
        return _finish_from_answer(view, run, stored)
    error = JobError.of(ErrorCode.POLL_FAILED, f"{failures} polls in a row failed; last: {reason}")
    return _finish(view, run, JobStatus.FAILED, error=error)


def _finish(
    view: JobView,
    run: Pass,
    status: JobStatus,
    *,
    result: Any = None,
    result_uri: str | None = None,
    error: JobError | None = None,
    finished_at: str | None = None,
    progress: Progress | None = None,
) -> JobView:
    now = utc_now()
    item = run.services.store.finish(
        view.job_id,
        run.holder,
        status,
        finished_at=_valid_time(finished_at) or now,
        at=now,
        result=result,
        result_uri=result_uri,
        error=error,
        progress=progress,
    )
    run.report.count(FINISHED_METRIC[status])
    logger.info(
        "job finished",
        extra={"job_id": view.job_id, "session_id": view.session_id, "status": str(status)},
    )
    return JobView.from_item(item)


def _notify(view: JobView, run: Pass, *, release: bool = False) -> JobView:
    """Publish the job's notification. One that SNS refuses for its content is published again
    without the job's own text; when even that is refused, the job is recorded as refused
    (`notify_error`) and closed like a notified one, rather than refused every tick."""
    notifier, store = run.services.notifier, run.services.store
    notification = view.notification(email_preview=run.services.settings.email_result_preview)
    try:
        notifier.publish(notification)
    except NotifyRefusedError as exc:
        logger.warning(
            "SNS refused the notification; publishing it without the job's text",
            extra={"job_id": view.job_id, "reason": str(exc), "cause": _cause(exc)},
        )
        try:
            notifier.publish(notification.shortened())
        except NotifyRefusedError as again:
            logger.error(
                "SNS refused even the shortened notification; the job is closed un-notified",
                extra={"job_id": view.job_id, "reason": str(again), "cause": _cause(again)},
            )
            run.report.count(Metric.NOTIFICATIONS_REFUSED)
            error = JobError.of(
                ErrorCode.NOTIFY_REFUSED,
                "SNS refused the job's notification, even without the job's own text",
            )
            return JobView.from_item(
                store.record_notify_refused(
                    view.job_id, run.holder, error, utc_now(), release=release
                )
            )
    run.report.count(Metric.NOTIFICATIONS_SENT)
    return JobView.from_item(
        store.record_notified(view.job_id, run.holder, utc_now(), release=release)
    )


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


def _is_overdue(view: JobView) -> bool:
    deadline = view.deadline()
    return deadline is not None and datetime.now(UTC) > deadline
