"""The agent's share of a job's history: events appended by one background writer, never in a
job's or a submit's way."""

from __future__ import annotations

import logging
import queue
import threading
import time

from agentjobs.agent.adapters import AgentAdapters
from agentjobs.history import Event

log = logging.getLogger(__name__)

MAX_PENDING_EVENTS = 1000
"""Events waiting to be written; past this (the history table unreachable for long) new ones
are dropped and logged rather than held in memory."""

_Entry = tuple[str, Event, int | None]


class JobJournal:
    """Appends events to the history table (EVENTS_TABLE) in the order they were recorded, on
    one daemon thread. A failed append is logged and dropped: history never fails a job."""

    def __init__(self, adapters: AgentAdapters) -> None:
        self._adapters = adapters
        self._queue: queue.Queue[_Entry | None] = queue.Queue(MAX_PENDING_EVENTS)
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._closed = False

    def record(self, job_id: str, event: Event, expires_at: int | None) -> None:
        """Queue `event` for the job's history; nothing when no history table is configured."""
        try:
            if self._adapters.events() is None:
                return
        except Exception as exc:  # a client that cannot be made: no history, never a failure
            log.warning("job %s: %s event not kept: %s", job_id, event.type, exc)
            return
        with self._lock:
            if self._closed:
                log.warning("job %s: %s event after shutdown not kept", job_id, event.type)
                return
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_all, name="job-history", daemon=True
                )
                self._writer.start()
        try:
            self._queue.put_nowait((job_id, event, expires_at))
        except queue.Full:
            log.warning("job %s: %s event dropped: history writes are behind", job_id, event.type)

    def close(self, timeout_s: float) -> None:
        """Write what is queued, for at most `timeout_s`; later events are not kept."""
        with self._lock:
            self._closed = True
            writer = self._writer
        if writer is None:
            return
        end = time.monotonic() + timeout_s
        while True:
            try:
                self._queue.put(None, timeout=max(end - time.monotonic(), 0.01))
                break
            except queue.Full:
                if time.monotonic() >= end:
                    break
        writer.join(max(end - time.monotonic(), 0.0))
        if writer.is_alive():
            log.warning("history writer stopped with %d event(s) unwritten", self._queue.qsize())

    def _write_all(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            job_id, event, expires_at = entry
            try:
                events = self._adapters.events()
                if events is not None:
                    events.append(job_id, event, expires_at)
            except Exception as exc:
                log.warning("job %s: %s event not kept: %s", job_id, event.type, exc)
