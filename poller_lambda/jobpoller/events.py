"""What the poller is asked to do, read once from its event: a tick, some jobs, or signals."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from jobpoller.report import TickReport
from jobpoller.services import BUSY_WAITS_AFTER_SIGNAL_S, Pass, PollerServices
from jobpoller.tick import reconcile_jobs, run_tick

MAX_JOB_IDS = 1000

UNHANDLED_STEPS = frozenset({"retry", "deferred"})
"""Where a job stops when this pass could not do its part (an AWS call failed, or time ran
out): its signal is handed back to SQS. Every other step is done, or owned by someone else
(another poller's lease, or the schedule for a job still running)."""


@dataclass(frozen=True)
class Tick:
    """A scheduled tick: every job in flight."""


@dataclass(frozen=True)
class JobList:
    """Just these jobs (the fast path, asked directly): `{"job_ids": [...]}` or `{"job_id"}`."""

    job_ids: list[str]


@dataclass(frozen=True)
class SignalBatch:
    """SQS completion signals (the fast path through the queue): the jobs each message names,
    by message id. Its answer is a batch response naming the messages not yet handled."""

    named: dict[str, list[str]] = field(default_factory=dict)

    @property
    def job_ids(self) -> list[str]:
        """Every job the batch names, in order, at most MAX_JOB_IDS."""
        return [j for ids in self.named.values() for j in ids][:MAX_JOB_IDS]

    def unhandled(self, message_id: str, report: TickReport) -> list[str]:
        """The jobs one message names that this pass did not handle (see UNHANDLED_STEPS);
        a message naming no job is handled: delivering it again would change nothing."""
        return [
            j
            for j in self.named.get(message_id, [])
            if report.steps.get(j, "retry") in UNHANDLED_STEPS
        ]


PollerRequest = Tick | JobList | SignalBatch


def parse_event(event: object) -> PollerRequest:
    """Read the poller's event once. SQS records whose bodies name jobs are a signal batch
    (a body that is not JSON names none); `job_ids` or `job_id` a job list; anything else a
    tick."""
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        records = [r for r in event["Records"] if isinstance(r, dict)]
        named: dict[str, list[str]] = {}
        for index, record in enumerate(records):
            message_id = str(record.get("messageId", index))
            named.setdefault(message_id, []).extend(_named_by_body(record.get("body")))
        if any(r.get("eventSource") == "aws:sqs" for r in records):
            return SignalBatch(named)
        return JobList([j for ids in named.values() for j in ids][:MAX_JOB_IDS])
    job_ids = job_ids_of(event)
    return Tick() if job_ids is None else JobList(job_ids)


def job_ids_of(event: object) -> list[str] | None:
    """The job ids an event names: `{"job_ids": [...]}`, `{"job_id": ...}`, or SQS records
    whose bodies are such objects. None means a scheduled tick over every job in flight."""
    request = (
        parse_event(event)
        if isinstance(event, dict) and isinstance(event.get("Records"), list)
        else None
    )
    if isinstance(request, JobList | SignalBatch):
        return request.job_ids
    if not isinstance(event, dict):
        return None
    if isinstance(event.get("job_id"), str):
        return [event["job_id"]]
    if isinstance(event.get("job_ids"), list):
        return [j for j in event["job_ids"] if isinstance(j, str) and j][:MAX_JOB_IDS]
    return None


def _named_by_body(body: object) -> list[str]:
    if not isinstance(body, str):
        return []
    try:
        return job_ids_of(json.loads(body)) or []
    except ValueError:
        return []


def process_event(event: object, context: Any, services: PollerServices) -> TickReport:
    """Run what the event asks for (see parse_event) within the context's time."""
    return run_request(parse_event(event), context, services)


def run_request(request: PollerRequest, context: Any, services: PollerServices) -> TickReport:
    """Run one tick, or reconcile the jobs the request names, within the context's time."""
    started = time.monotonic()
    budget_s = services.settings.tick_budget_s

    def time_left() -> float:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if callable(remaining):
            return float(remaining()) / 1000
        return budget_s - (time.monotonic() - started)

    request_id = str(getattr(context, "aws_request_id", "") or "local")
    holder = f"{request_id}/{uuid.uuid4().hex[:8]}"
    if isinstance(request, Tick):
        run = Pass(services=services, holder=holder)
        run_tick(run, time_left)
    else:
        # Named jobs were signalled as ending now: a busy session is asked again shortly.
        run = Pass(services=services, holder=holder, busy_waits_s=BUSY_WAITS_AFTER_SIGNAL_S)
        reconcile_jobs(request.job_ids, run, time_left)
    return run.report
