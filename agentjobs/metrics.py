"""The poller's CloudWatch metric names: what the poller emits and what alarms watch."""

from __future__ import annotations

from enum import StrEnum

NAMESPACE = "AgentJobs"
"""The metric namespace, unless POWERTOOLS_METRICS_NAMESPACE names another."""

SERVICE = "poller"
"""The `service` dimension Powertools adds to every poller metric."""


class Metric(StrEnum):
    """CloudWatch metric names (namespace AgentJobs, dimension service=poller)."""

    JOBS_POLLED = "JobsPolled"
    JOBS_SUCCEEDED = "JobsSucceeded"
    JOBS_FAILED = "JobsFailed"
    JOBS_CANCELLED = "JobsCancelled"
    JOBS_TIMED_OUT = "JobsTimedOut"
    JOBS_LOST = "JobsLost"
    NOTIFICATIONS_SENT = "NotificationsSent"
    POLL_ERRORS = "PollErrors"
    TICK_DURATION_MS = "TickDurationMs"
    INDEX_READ_MS = "IndexReadMs"
    JOBS_OVERDUE = "JobsOverdue"
    JOBS_IN_FLIGHT = "JobsInFlight"
    JOBS_DEFERRED = "JobsDeferred"
    SESSIONS_STOPPED = "SessionsStopped"
    BAD_ANSWERS = "BadAnswers"
    BAD_RECORDS = "BadRecords"
    RECORDS_REFUSED = "RecordsRefused"
    """Jobs whose outcome the table refused (too large, a value it does not accept)."""
    NOTIFICATIONS_REFUSED = "NotificationsRefused"
    """Jobs closed un-notified: SNS refused even their shortened notification."""
    JOBS_RESUMED = "JobsResumed"
    """Resumable jobs whose session was lost, started again in a fresh session (an attempt)."""
    JOBS_HANDED_OFF = "JobsHandedOff"
    """Resumable jobs moved to a fresh session before their session's max lifetime."""
    EVENTS_DROPPED = "EventsDropped"
    """History events the history table did not take: logged and dropped, the job goes on."""


JOB_OUTCOME_METRICS = (
    Metric.JOBS_SUCCEEDED,
    Metric.JOBS_FAILED,
    Metric.JOBS_CANCELLED,
    Metric.JOBS_TIMED_OUT,
    Metric.JOBS_LOST,
)
"""One counter per terminal status, in the protocol's order."""
