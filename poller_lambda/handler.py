"""The poller Lambda: collect finished jobs from AgentCore sessions, record them, notify once."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from agentjobs.metrics import NAMESPACE, SERVICE
from jobpoller.events import SignalBatch, parse_event, run_request
from jobpoller.report import Metric, TickReport
from jobpoller.services import PollerServices, build_services
from jobpoller.settings import PollerSettings

logger = Logger(service="poller")
tracer = Tracer(service="poller")
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE, service=SERVICE
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
    Metric.RECORDS_REFUSED,
    Metric.NOTIFICATIONS_REFUSED,
    Metric.JOBS_RESUMED,
    Metric.JOBS_HANDED_OFF,
    Metric.EVENTS_DROPPED,
)


@lru_cache(maxsize=1)
def services() -> PollerServices:
    """The adapters, built on the first invocation and reused by a warm container."""
    return build_services(boto3.session.Session(), PollerSettings.from_env())


class SignalNotHandledError(Exception):
    """A completion signal whose job this pass could not reconcile: SQS delivers it again."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run one tick (scheduled event) or reconcile the jobs an event names (`job_ids`, or
    SQS completion signals, answered with the batch's item failures)."""
    request = parse_event(event)
    report = run_request(request, context, services())
    emit_metrics(report)
    summary = report.summary()
    logger.info("poller pass done", extra=summary)
    if not isinstance(request, SignalBatch):
        return summary
    return signal_batch_response(event, report, context, request)


def signal_batch_response(
    event: dict[str, Any], report: TickReport, context: Any, batch: SignalBatch | None = None
) -> dict[str, Any]:
    """ReportBatchItemFailures: the signals whose jobs were all reconciled are deleted; the
    others are handed back to SQS (and to its dead-letter queue after a few receives). The
    jobs were reconciled together above, concurrently; here each record is judged, by the
    batch as the handler read it (read here when a caller gives none)."""
    signals = batch if batch is not None else parse_event(event)
    if not isinstance(signals, SignalBatch):
        raise ValueError("the event is not a batch of SQS completion signals")

    def judge(record: SQSRecord) -> None:
        left = signals.unhandled(record.message_id, report)
        if left:
            raise SignalNotHandledError(f"not reconciled yet: {', '.join(left)}")

    # A wholly failed batch is answered too, not raised: the Lambda's Errors metric is for
    # the poller failing, and every job here is still swept by the schedule.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response: dict[str, Any] = dict(
        process_partial_response(
            event=event, record_handler=judge, processor=processor, context=context
        )
    )
    return response


def emit_metrics(report: TickReport) -> None:
    """Add the pass's counters to the metrics flushed when the handler returns."""
    counts = dict(report.counts)
    for metric in _ALWAYS:
        counts.setdefault(metric, 0)
    for metric, value in counts.items():
        timed = metric in (Metric.TICK_DURATION_MS, Metric.INDEX_READ_MS)
        unit = MetricUnit.Milliseconds if timed else MetricUnit.Count
        metrics.add_metric(name=str(metric), unit=unit, value=value)
