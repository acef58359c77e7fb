"""The poller Lambda: collect finished jobs from AgentCore sessions, record them, notify once."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from jobpoller.events import process_event
from jobpoller.reconcile import PollerServices
from jobpoller.report import Metric, TickReport
from jobpoller.services import build_services
from jobpoller.settings import PollerSettings

logger = Logger(service="poller")
tracer = Tracer(service="poller")
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "AgentJobs", service="poller"
)

# Emitted every tick, zero included, so alarms and dashboards always have data points.
_ALWAYS = (
    Metric.JOBS_POLLED,
    Metric.JOBS_SUCCEEDED,
    Metric.JOBS_FAILED,
    Metric.JOBS_CANCELLED,
    Metric.JOBS_TIMED_OUT,
    Metric.JOBS_LOST,
    Metric.NOTIFICATIONS_SENT,
    Metric.POLL_ERRORS,
    Metric.JOBS_OVERDUE,
)


@lru_cache(maxsize=1)
def services() -> PollerServices:
    """The adapters, built on the first invocation and reused by a warm container."""
    return build_services(boto3.session.Session(), PollerSettings.from_env())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, object]:
    """Run one tick (scheduled event) or reconcile the jobs an event names (`job_ids`)."""
    report = process_event(event, context, services())
    emit_metrics(report)
    summary = report.summary()
    logger.info("poller pass done", extra=summary)
    return summary


def emit_metrics(report: TickReport) -> None:
    """Add the pass's counters to the metrics flushed when the handler returns."""
    counts = dict(report.counts)
    for metric in _ALWAYS:
        counts.setdefault(metric, 0)
    for metric, value in counts.items():
        timed = metric in (Metric.TICK_DURATION_MS, Metric.INDEX_READ_MS)
        unit = MetricUnit.Milliseconds if timed else MetricUnit.Count
        metrics.add_metric(name=str(metric), unit=unit, value=value)
