"""The poller's wiring: its AWS-facing adapters, built once, and the state of one run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from botocore.config import Config

from agentjobs.history import Event, EventLog
from agentjobs.metrics import Metric
from agentjobs.notifier import Notifier
from agentjobs.record import JobRecord, StoredJob
from agentjobs.store import JobStore, ResultStore, StoreError
from jobpoller.agentcore import Busy, Reply, RuntimeClient, agentcore_client
from jobpoller.report import TickReport
from jobpoller.settings import PollerSettings

logger = Logger(service="poller", child=True)

BUSY_WAITS_AFTER_SIGNAL_S = (0.25, 0.5, 1.0, 2.0)
"""A signalled job's session asked again after these pauses while it answers busy. The
agent's shutdown signals a resumable job it interrupts from inside the session being torn
down, which answers RetryableConflictException until its process has exited (AWS: retry
with a short backoff); a warm poller asks within milliseconds, and without these waits the
signal was spent on that answer and the job resumed only at the next tick."""

SessionShared = Callable[[StoredJob], bool]
"""Whether other jobs in flight use this job's session, so it must not be stopped yet."""


@dataclass(frozen=True)
class PollerServices:
    """The AWS-facing adapters the poller works through, built once per Lambda container."""

    store: JobStore
    results: ResultStore
    agent: RuntimeClient
    notifier: Notifier
    settings: PollerSettings
    events: EventLog | None = None
    """The history table (EVENTS_TABLE); None: no history is kept."""


@dataclass
class Pass:
    """One run of the poller over some jobs (a tick, or a fast-path call): who holds the
    leases, what was counted, and which sessions this run has already stopped."""

    services: PollerServices
    holder: str
    report: TickReport = field(default_factory=TickReport)
    busy_waits_s: tuple[float, ...] = ()
    """Pauses before asking a session that answered busy again within this run; none on a
    tick, which asks again at the next one (see BUSY_WAITS_AFTER_SIGNAL_S)."""
    _stopped: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ask_job(self, session_id: str, job_id: str) -> Reply:
        """A session's answer about a job (`result`), asked again after each of
        `busy_waits_s` while it answers busy."""
        payload = {"action": "result", "job_id": job_id}
        reply = self.services.agent.ask(session_id, payload)
        for pause in self.busy_waits_s:
            if not isinstance(reply, Busy):
                break
            time.sleep(pause)
            reply = self.services.agent.ask(session_id, payload)
        return reply

    def retry_later(self, *job_ids: str) -> None:
        """Count one failed step and leave these jobs for the next tick (or SQS redelivery)."""
        self.report.count(Metric.POLL_ERRORS)
        for job_id in job_ids:
            self.report.step(job_id, "retry")

    def stop_once(self, session_id: str) -> None:
        """Stop a session unless this run already did (jobs of one session share it)."""
        with self._lock:
            if session_id in self._stopped:
                return
        if self.services.agent.stop_session(session_id):
            self.report.count(Metric.SESSIONS_STOPPED)
        with self._lock:
            self._stopped.add(session_id)

    def record_event(self, job: StoredJob, event: Event) -> None:
        """Append one event to the job's history, if there is a history. Never raises: a job's
        transition is already written, and an event the table refuses is logged, counted
        (EventsDropped) and dropped rather than retried."""
        events = self.services.events
        if events is None or not isinstance(job, JobRecord):
            # A malformed record has no TTL to give its events: they would be kept for good.
            return
        try:
            events.append(job.job_id, event, job.expires_at)
        except StoreError as exc:
            logger.warning(
                "the history table did not take the event; it is dropped",
                extra={"job_id": job.job_id, "event": event.type, "reason": str(exc)},
            )
            self.report.count(Metric.EVENTS_DROPPED)


def services_from_clients(
    settings: PollerSettings, *, dynamodb: Any, s3: Any, sns: Any, agentcore: Any
) -> PollerServices:
    """The poller's adapters over the given clients."""
    return PollerServices(
        store=JobStore(dynamodb, settings.jobs_table),
        results=ResultStore(s3, settings.results_bucket),
        agent=RuntimeClient(agentcore, settings.agent_runtime_arn, settings.qualifier),
        notifier=Notifier(sns, settings.topic_arn),
        settings=settings,
        events=EventLog(dynamodb, settings.events_table) if settings.events_table else None,
    )


def build_services(session: Any, settings: PollerSettings) -> PollerServices:
    """The poller's adapters over fresh clients of a boto3 session (endpoints and region
    come from the environment, so the same code reaches AWS or the local stack)."""
    # Enough pooled connections for every worker thread; the store's calls are idempotent
    # or conditional, so the standard retries stay on for them.
    aws = Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=max(settings.read_timeout_s, 10.0),
        max_pool_connections=settings.concurrency,
        retries={"mode": "standard", "total_max_attempts": 3},
    )
    return services_from_clients(
        settings,
        dynamodb=session.client("dynamodb", config=aws),
        s3=session.client("s3", config=aws),
        sns=session.client("sns", config=aws),
        agentcore=agentcore_client(session, settings),
    )
