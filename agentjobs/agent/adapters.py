"""The agent's AWS adapters, created on first use so that startup stays fast."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from agentjobs.agent.settings import AgentSettings
from agentjobs.history import EventLog
from agentjobs.signals import CompletionQueue
from agentjobs.store import JobStore, ResultStore, StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Short timeouts and few attempts: a submit waits on the table, and a caller is better
# served by a prompt JOB_STORE_UNAVAILABLE than by a request that hangs.
_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 3,
    "read_timeout": 10,
    "retries": {"mode": "standard", "max_attempts": 3},
}


class AgentAdapters:
    """The job table, results bucket, history table and completion queue, each made on first
    use, over clients made once and shared by all threads."""

    def __init__(self, settings: AgentSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._jobs: JobStore | None = None
        self._results: ResultStore | None = None
        self._completions: CompletionQueue | None = None
        self._events: EventLog | None = None
        self._session: Any = None  # one boto3 session: made under the lock, by the first client

    def jobs(self) -> JobStore:
        """The job table; StoreError when JOBS_TABLE is not set."""
        if self._jobs is None:
            if not self._settings.jobs_table:
                raise StoreError("the agent has no job table configured (JOBS_TABLE is not set)")
            with self._lock:
                if self._jobs is None:
                    self._jobs = JobStore(self._client("dynamodb"), self._settings.jobs_table)
        return self._jobs

    def results(self) -> ResultStore:
        """The results bucket; StoreError when RESULTS_BUCKET is not set."""
        if self._results is None:
            if not self._settings.results_bucket:
                raise StoreError(
                    "the agent has no results bucket configured (RESULTS_BUCKET is not set)"
                )
            with self._lock:
                if self._results is None:
                    self._results = ResultStore(self._client("s3"), self._settings.results_bucket)
        return self._results

    def completions(self) -> CompletionQueue | None:
        """The fast completion path's queue; None when COMPLETION_QUEUE_URL is not set."""
        queue_url = self._settings.completion_queue_url
        if queue_url is None:
            return None
        if self._completions is None:
            with self._lock:
                if self._completions is None:
                    self._completions = CompletionQueue(
                        self._client("sqs", _SIGNAL_CLIENT_CONFIG), queue_url
                    )
        return self._completions

    def events(self) -> EventLog | None:
        """The history table; None when EVENTS_TABLE is not set (no history is kept)."""
        table = self._settings.events_table
        if table is None:
            return None
        if self._events is None:
            with self._lock:
                if self._events is None:
                    self._events = EventLog(self._client("dynamodb"), table)
        return self._events

    def _client(self, service: str, config: dict[str, Any] | None = None) -> Any:
        """A client of the process's one boto3 session; called with the lock held, as a boto3
        session is not safe to make clients from in several threads at once. One session
        parses botocore's service models and endpoints once for all four clients: a session
        each cost about 60 ms of CPU more per client on every cold start."""
        # Deferred: boto3's import costs a few hundred ms, and /ping must not wait for it.
        import boto3  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415

        if self._session is None:
            self._session = boto3.session.Session()
        return self._session.client(service, config=Config(**(config or _CLIENT_CONFIG)))

    def warm_up(self) -> None:
        """Create the clients ahead of the first submit; failures wait for that submit."""
        for make in (self.jobs, self.results):
            with contextlib.suppress(StoreError):
                make()
        with contextlib.suppress(Exception):  # made, or logged, at the first event instead
            self.events()
        # A queue client that cannot be made now is made (or logged) at the first signal.
        with contextlib.suppress(Exception):
            self.completions()


# A signal only saves latency (the schedule finds the job anyway): a short wait, one retry.
_SIGNAL_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 2,
    "read_timeout": 5,
    "retries": {"mode": "standard", "max_attempts": 2},
}


def with_store_retries(
    job_id: str,
    call: Callable[[], T],
    *,
    attempts: int,
    first_delay_s: float,
    give_up: Callable[[], bool] = lambda: False,
) -> T:
    """`call`, tried again with a doubling delay while it raises StoreError, at most `attempts`
    times (fewer once `give_up` says so); the last StoreError is raised."""
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except StoreError as exc:
            if attempt == attempts or give_up():
                raise
            log.warning("job %s: store attempt %d failed (%s); retrying", job_id, attempt, exc)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
