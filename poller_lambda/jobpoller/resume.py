"""A resumable job's durable moves: resumed after a loss, a pending resume re-sent, handed off."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger

from agentjobs.history import Event, EventType
from agentjobs.protocol import ErrorCode, JobStatus, parse_time, utc_now
from agentjobs.record import JobError, JobRecord, StoredJob
from jobpoller.agentcore import Busy, Replied, StopSessionError, Unreachable
from jobpoller.answers import ResumeRefused, StillRunning, Unusable, read_resume_answer
from jobpoller.attempts import Attempts, later_attempt
from jobpoller.lease import Ending, Lease
from jobpoller.outcome import end_job, finish_from_answer, stored_outcome
from jobpoller.report import Metric
from jobpoller.services import Pass, SessionShared

logger = Logger(service="poller", child=True)

Collect = Callable[[JobRecord], StoredJob]
"""Poll a job's session and act on the answer, as the main path does: a resume sent again
found the job already ended in its fresh session."""


def resume(
    job: JobRecord,
    run: Pass,
    lease: Lease,
    session_shared: SessionShared,
    *,
    attempts: Attempts,
    reason: str,
    collect: Collect,
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
    after = send_resume(resumed, run, lease, collect)
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


def send_resume(  # noqa: PLR0911
    job: StoredJob, run: Pass, lease: Lease, collect: Collect
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
        return end_job(job, run, lease, Ending.failed(answer.error))
    if isinstance(answer, Unusable):
        run.report.count(Metric.BAD_ANSWERS)
        return _resume_not_taken(job, run, lease, f"unusable answer to resume: {answer.reason}")
    taken = job.evolve(resume_pending=False)
    running = answer.running
    if running is None:
        # It ended there already (this was a resume sent again): collect it now.
        lease.record_resume_taken(session_id, utc_now())
        return collect(taken)
    lease.record_resume_taken(
        session_id,
        utc_now(),
        progress=running.progress,
        attempt=later_attempt(job, running.attempt),
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
    stored = stored_outcome(job, run)
    if stored is not None:
        return finish_from_answer(job, run, lease, stored)
    error = JobError.of(
        ErrorCode.SESSION_LOST,
        f"the job's fresh session did not take it: {failures} tries to resume it failed; "
        f"last: {reason}",
    )
    return end_job(job, run, lease, Ending(JobStatus.LOST, error=error))


def nears_max_lifetime(job: JobRecord, answer: StillRunning, run: Pass) -> bool:
    """Whether a resumable job's session is close enough to AgentCore's max lifetime to hand
    the job off now: the session's age counts from the earliest sign of its start (when the
    poller gave it the job, or when its process says it started). A job whose own deadline
    comes before the session's end is left where it is: it ends first. So is a job that has
    not checkpointed since it started in this session: a fresh session would start it over
    from where this one did, and a job that cannot finish within one session's window would
    be handed off forever, using no attempt. It meets the max lifetime instead, and its
    loss counts an attempt (or ends it LOST)."""
    if not job.resumable:
        return False
    settings = run.services.settings
    given = _time_or_none(job.run_started_at or job.submitted_at)
    process = _time_or_none(answer.session_started_at)
    # When the job came to this session (a process may be older than the job it runs).
    since = given or process
    if since is None:
        return False
    ends_at = min(m for m in (given, process) if m is not None) + timedelta(
        seconds=settings.session_max_lifetime_s
    )
    deadline = job.deadline()
    if deadline is not None and deadline <= ends_at:
        return False
    if datetime.now(UTC) < ends_at - timedelta(seconds=settings.handoff_margin_s):
        return False
    checkpointed = _time_or_none(answer.checkpoint_at)
    return checkpointed is not None and checkpointed >= since


def _time_or_none(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def hand_off(
    job: JobRecord,
    run: Pass,
    lease: Lease,
    session_shared: SessionShared,
    answer: StillRunning,
    *,
    collect: Collect,
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
    stored = stored_outcome(job, run)
    if stored is not None:
        return finish_from_answer(job, run, lease, stored)
    reason = "the session neared its max lifetime"
    attempts = Attempts.of(job, run.services.results)
    return resume(
        job,
        run,
        lease,
        session_shared,
        attempts=attempts,
        reason=reason,
        collect=collect,
        handoff=True,
    )
