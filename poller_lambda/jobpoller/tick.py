"""One poller tick: every job in flight, bounded concurrency, within the time it is given."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger

from agentjobs.protocol import parse_time
from agentjobs.record import StoredJob
from jobpoller.reconcile import close_spent_session, reconcile
from jobpoller.report import Metric
from jobpoller.services import Pass

logger = Logger(service="poller", child=True)

INDEX_PAGE_SIZE = 1000

TimeLeft = Callable[[], float]
"""Seconds left before the poller must have returned."""


def run_tick(run: Pass, time_left: TimeLeft) -> None:
    """Reconcile every job the attention index lists, oldest first, then stop the sessions
    whose jobs are all finished and notified. Jobs not started before the safety margin are
    left for the next tick."""
    started = time.monotonic()
    # Large pages: one query per tick for up to about a thousand jobs (DynamoDB caps a page
    # at 1 MB); the index holds only jobs in flight, so a page never reads history.
    snapshot = list(run.services.store.jobs_needing_attention(page_size=INDEX_PAGE_SIZE))
    run.report.count(Metric.INDEX_READ_MS, (time.monotonic() - started) * 1000)
    run.report.count(Metric.JOBS_IN_FLIGHT, len(snapshot))
    run.report.count(
        Metric.JOBS_OVERDUE, count_overdue(snapshot, run.services.settings.overdue_after_s)
    )
    by_session: dict[str, list[StoredJob]] = defaultdict(list)
    for job in snapshot:
        if job.active_session_id is not None:
            by_session[job.active_session_id].append(job)

    def shared(job: StoredJob) -> bool:
        # Decided on this tick's snapshot, so that concurrent workers never both stop or
        # both skip a session: sessions with several jobs are stopped after the pool drains.
        return len(by_session.get(job.active_session_id or "", ())) > 1

    todo = [v.job_id for v in snapshot if not (v.is_final and shared(v))]
    after = _reconcile_all(todo, run, shared, time_left)
    final = {v.job_id for v in snapshot if v.is_final} | {
        job_id for job_id, v in after.items() if v is not None and v.is_final
    }
    spent = [jobs for jobs in by_session.values() if len(jobs) > 1 and _all_in(jobs, final)]
    _stop_spent_sessions(spent, run, time_left)
    run.report.count(Metric.TICK_DURATION_MS, (time.monotonic() - started) * 1000)


def reconcile_jobs(job_ids: Iterable[str], run: Pass, time_left: TimeLeft) -> None:
    """Reconcile just these jobs (the fast path: an agent says they ended). A session is
    stopped only when the index shows no other job of it still to finish or notify; the
    final jobs that waited for it are then closed too."""
    started = time.monotonic()
    waiting: dict[str, list[str]] = {}
    lock = threading.Lock()

    def shared(job: StoredJob) -> bool:
        session_id = job.active_session_id or ""
        # The index finds the jobs submitted in the session; of those, the ones resumed
        # elsewhere no longer use it. A session the poller minted for a resume is that one
        # job's alone, so no job elsewhere runs in this one unless it was submitted here.
        others = [
            o
            for o in run.services.store.jobs_in_flight_on_session(session_id)
            if o.job_id != job.job_id and o.active_session_id == session_id
        ]
        if any(not o.is_final for o in others):
            return True
        with lock:
            waiting[job.job_id] = [o.job_id for o in others]
        return False

    after = _reconcile_all(list(dict.fromkeys(job_ids)), run, shared, time_left)
    for job_id, others in waiting.items():
        job = after.get(job_id)
        closed = run.report.steps.get(job_id) == "closed"
        if others and closed and job is not None and job.active_session_id is not None:
            close_spent_session(job.active_session_id, others, run)
    run.report.count(Metric.TICK_DURATION_MS, (time.monotonic() - started) * 1000)


def count_overdue(snapshot: list[StoredJob], overdue_after_s: float) -> int:
    """Running jobs not heard from for longer than the overdue limit: their sessions risk
    the idle timeout, so the schedule is not keeping up."""
    limit = timedelta(seconds=overdue_after_s)
    now = datetime.now(UTC)
    overdue = 0
    for job in snapshot:
        seen = job.last_seen_at or job.submitted_at
        if job.is_terminal or seen is None:
            continue
        try:
            if now - parse_time(seen) > limit:
                overdue += 1
        except ValueError:
            continue
    return overdue


def _reconcile_all(
    job_ids: list[str],
    run: Pass,
    shared: Callable[[StoredJob], bool],
    time_left: TimeLeft,
) -> dict[str, StoredJob | None]:
    margin = run.services.settings.safety_margin_s

    def one(job_id: str) -> StoredJob | None:
        if time_left() <= margin:
            run.report.count(Metric.JOBS_DEFERRED)
            run.report.step(job_id, "deferred")
            return None
        try:
            return reconcile(job_id, run, shared)
        except Exception:
            # One bad job never stops the others; it is retried next tick.
            logger.exception("reconciling the job failed", extra={"job_id": job_id})
            run.retry_later(job_id)
            return None

    if not job_ids:
        return {}
    workers = min(run.services.settings.concurrency, len(job_ids))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile") as pool:
        return dict(zip(job_ids, pool.map(one, job_ids), strict=True))


def _stop_spent_sessions(sessions: list[list[StoredJob]], run: Pass, time_left: TimeLeft) -> None:
    """Stop each session whose jobs are all final, once, then close each of its jobs."""

    def close_session(jobs: list[StoredJob]) -> None:
        if time_left() <= run.services.settings.safety_margin_s:
            run.report.count(Metric.JOBS_DEFERRED, len(jobs))
            return
        session_id = jobs[0].active_session_id or ""
        try:
            close_spent_session(session_id, [job.job_id for job in jobs], run)
        except Exception:
            logger.exception("closing the session failed", extra={"session_id": session_id})
            run.report.count(Metric.POLL_ERRORS)

    if not sessions:
        return
    workers = min(run.services.settings.concurrency, len(sessions))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stop") as pool:
        list(pool.map(close_session, sessions))


def _all_in(jobs: list[StoredJob], final: set[str]) -> bool:
    return all(job.job_id in final for job in jobs)
