"""What the poller is asked to do: a scheduled tick, or specific jobs (the fast path)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from jobpoller.reconcile import Pass, PollerServices
from jobpoller.report import TickReport
from jobpoller.tick import reconcile_jobs, run_tick

MAX_JOB_IDS = 1000


def job_ids_of(event: object) -> list[str] | None:
    """The job ids an event names: `{"job_ids": [...]}`, `{"job_id": ...}`, or SQS records
    whose bodies are such objects. None means a scheduled tick over every job in flight."""
    if not isinstance(event, dict):
        return None
    if isinstance(event.get("Records"), list):
        ids: list[str] = []
        for record in event["Records"]:
            body = record.get("body") if isinstance(record, dict) else None
            try:
                named = job_ids_of(json.loads(body)) if isinstance(body, str) else None
            except ValueError:
                named = None
            ids.extend(named or [])
        return ids[:MAX_JOB_IDS]
    if isinstance(event.get("job_id"), str):
        return [event["job_id"]]
    if isinstance(event.get("job_ids"), list):
        return [j for j in event["job_ids"] if isinstance(j, str) and j][:MAX_JOB_IDS]
    return None


UNHANDLED_STEPS = frozenset({"retry", "deferred"})
"""Where a job stops when this pass could not do its part (an AWS call failed, or time ran
out): its signal is handed back to SQS. Every other step is done, or owned by someone else
(another poller's lease, or the schedule for a job still running)."""


def is_signal_batch(event: object) -> bool:
    """True for an SQS event (the fast completion path), whose answer is a batch response."""
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        return False
    return any(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in event["Records"])


def unhandled_jobs(body: str, report: TickReport) -> list[str]:
    """The jobs named by one signal's body that this pass did not handle (see
    UNHANDLED_STEPS); a body naming no job is handled: retrying it would change nothing."""
    try:
        named = job_ids_of(json.loads(body))
    except ValueError:
        return []
    return [j for j in named or [] if report.steps.get(j, "retry") in UNHANDLED_STEPS]


def process_event(event: object, context: Any, services: PollerServices) -> TickReport:
    """Run one tick, or reconcile the jobs the event names, within the context's time."""
    started = time.monotonic()
    budget_s = services.settings.tick_budget_s

    def time_left() -> float:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if callable(remaining):
            return float(remaining()) / 1000
        return budget_s - (time.monotonic() - started)

    request_id = str(getattr(context, "aws_request_id", "") or "local")
    run = Pass(services=services, holder=f"{request_id}/{uuid.uuid4().hex[:8]}")
    job_ids = job_ids_of(event)
    if job_ids is None:
        run_tick(run, time_left)
    else:
        reconcile_jobs(job_ids, run, time_left)
    return run.report
