"""The poller's configuration, read once from the environment into a frozen dataclass."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class PollerSettingsError(ValueError):
    """An environment variable is missing or out of range; the message names it and the fix."""


@dataclass(frozen=True)
class PollerSettings:
    """Everything the poller reads from its environment.

    Required: JOBS_TABLE, RESULTS_BUCKET, TOPIC_ARN, AGENT_RUNTIME_ARN. Every knob below
    has a default that fits a Lambda with a 5-minute timeout run every minute; EVENTS_TABLE
    is optional.
    """

    jobs_table: str
    results_bucket: str
    topic_arn: str
    agent_runtime_arn: str
    qualifier: str = "DEFAULT"
    """AGENT_RUNTIME_QUALIFIER: the runtime endpoint invoked."""
    concurrency: int = 16
    """POLLER_CONCURRENCY: jobs reconciled at once (threads, and HTTP connections per client)."""
    read_timeout_s: float = 15.0
    """POLLER_READ_TIMEOUT_S: longest wait for one AgentCore answer. A `result` answer is
    immediate; the margin covers a cold microVM when a recycled session is re-created."""
    connect_timeout_s: float = 3.0
    """POLLER_CONNECT_TIMEOUT_S: longest wait to open a connection to an AWS endpoint."""
    max_poll_failures: int = 5
    """POLLER_MAX_POLL_FAILURES: consecutive failed polls of one job (transport errors or
    unusable answers) before it becomes FAILED with the last reason. At one tick a minute,
    five minutes of failures: inside the 15-minute idle window, beyond a brief outage."""
    lease_s: float = 120.0
    """POLLER_LEASE_S: how long one poller owns a job while reconciling it. Must outlast the
    longest reconcile (two AgentCore calls plus a few AWS calls), or two pollers could both
    publish; a crashed poller's jobs wait at most this long."""
    safety_margin_s: float = 30.0
    """POLLER_SAFETY_MARGIN_S: no job is started when less than this is left of the Lambda's
    time; the rest waits for the next tick. Must exceed one reconcile's worst case."""
    overdue_after_s: float = 600.0
    """POLLER_OVERDUE_AFTER_S: a running job not heard from for this long counts in
    JobsOverdue: its session is getting close to the 15-minute idle timeout."""
    tick_budget_s: float = 240.0
    """POLLER_TICK_BUDGET_S: the time a tick may take when there is no Lambda context to
    ask (a local schedule); under Lambda the remaining time decides."""
    email_result_preview: bool = False
    """POLLER_EMAIL_RESULT_PREVIEW: `1` to quote the beginning of an inline result in the
    email. Off by default: the email leaves the encrypted topic for a mailbox; the JSON
    message (for SQS and other subscribers) always carries its short preview."""
    events_table: str | None = None
    """EVENTS_TABLE: the history table the poller appends a job's events to (session lost,
    handed off, resumed, ended, notified). Unset: no history is written, nothing else
    changes."""
    session_max_lifetime_s: float = 28_800.0
    """POLLER_SESSION_MAX_LIFETIME_S: the runtime's session max lifetime (AgentCore's
    default and ceiling, 8 h). A resumable job's session this old, less the margin below,
    is handed off to a fresh session before AgentCore ends it."""
    handoff_margin_s: float = 900.0
    """POLLER_HANDOFF_MARGIN_S: how long before its session's max lifetime a resumable job
    is handed off. Must cover a few ticks, so that a missed tick or two still hands it off
    in time (15 minutes: fifteen ticks at the deployed rate). Unset: 900, or a quarter of
    the lifetime when that is shorter; it must be shorter than the lifetime."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PollerSettings:
        """Read the settings; raise PollerSettingsError naming the variable and the fix."""
        source = os.environ if env is None else env
        # AgentCore's lifecycle settings take 60 to 28,800 s; a local runtime may end sessions
        # within seconds, so that tests can reach the max lifetime.
        lifetime = _number(
            source, "POLLER_SESSION_MAX_LIFETIME_S", cls.session_max_lifetime_s, 1, 28_800
        )
        settings = cls(
            jobs_table=_required(source, "JOBS_TABLE"),
            results_bucket=_required(source, "RESULTS_BUCKET"),
            topic_arn=_required(source, "TOPIC_ARN"),
            agent_runtime_arn=_required(source, "AGENT_RUNTIME_ARN"),
            qualifier=source.get("AGENT_RUNTIME_QUALIFIER", cls.qualifier) or cls.qualifier,
            concurrency=int(_number(source, "POLLER_CONCURRENCY", cls.concurrency, 1, 256)),
            read_timeout_s=_number(source, "POLLER_READ_TIMEOUT_S", cls.read_timeout_s, 1, 900),
            connect_timeout_s=_number(
                source, "POLLER_CONNECT_TIMEOUT_S", cls.connect_timeout_s, 0.5, 60
            ),
            max_poll_failures=int(
                _number(source, "POLLER_MAX_POLL_FAILURES", cls.max_poll_failures, 1, 1000)
            ),
            lease_s=_number(source, "POLLER_LEASE_S", cls.lease_s, 0.5, 3600),
            safety_margin_s=_number(source, "POLLER_SAFETY_MARGIN_S", cls.safety_margin_s, 0, 900),
            overdue_after_s=_number(
                source, "POLLER_OVERDUE_AFTER_S", cls.overdue_after_s, 1, 28_800
            ),
            tick_budget_s=_number(source, "POLLER_TICK_BUDGET_S", cls.tick_budget_s, 1, 900),
            email_result_preview=_flag(
                source, "POLLER_EMAIL_RESULT_PREVIEW", cls.email_result_preview
            ),
            events_table=source.get("EVENTS_TABLE", "").strip() or None,
            session_max_lifetime_s=lifetime,
            handoff_margin_s=_number(
                source,
                "POLLER_HANDOFF_MARGIN_S",
                min(cls.handoff_margin_s, lifetime / 4),
                0,
                28_800,
            ),
        )
        if settings.handoff_margin_s >= settings.session_max_lifetime_s:
            raise PollerSettingsError(
                f"POLLER_HANDOFF_MARGIN_S={settings.handoff_margin_s:g} is not shorter than "
                f"POLLER_SESSION_MAX_LIFETIME_S={settings.session_max_lifetime_s:g}: every "
                "resumable job would be handed off at once; set the margin below the lifetime "
                "(a few poller periods, say a quarter of it at most)"
            )
        if settings.lease_s < 2 * settings.read_timeout_s:
            raise PollerSettingsError(
                f"POLLER_LEASE_S={settings.lease_s:g} is shorter than two AgentCore calls "
                f"(POLLER_READ_TIMEOUT_S={settings.read_timeout_s:g}); set it to at least "
                f"{2 * settings.read_timeout_s:g} so that no second poller takes a job mid-way"
            )
        return settings

    @property
    def environment(self) -> dict[str, str]:
        """These settings as the environment variables that produce them."""
        return {
            "JOBS_TABLE": self.jobs_table,
            "RESULTS_BUCKET": self.results_bucket,
            "TOPIC_ARN": self.topic_arn,
            "AGENT_RUNTIME_ARN": self.agent_runtime_arn,
            "AGENT_RUNTIME_QUALIFIER": self.qualifier,
            "POLLER_CONCURRENCY": str(self.concurrency),
            "POLLER_READ_TIMEOUT_S": f"{self.read_timeout_s:g}",
            "POLLER_CONNECT_TIMEOUT_S": f"{self.connect_timeout_s:g}",
            "POLLER_MAX_POLL_FAILURES": str(self.max_poll_failures),
            "POLLER_LEASE_S": f"{self.lease_s:g}",
            "POLLER_SAFETY_MARGIN_S": f"{self.safety_margin_s:g}",
            "POLLER_OVERDUE_AFTER_S": f"{self.overdue_after_s:g}",
            "POLLER_TICK_BUDGET_S": f"{self.tick_budget_s:g}",
            "POLLER_EMAIL_RESULT_PREVIEW": "1" if self.email_result_preview else "0",
            "POLLER_SESSION_MAX_LIFETIME_S": f"{self.session_max_lifetime_s:g}",
            "POLLER_HANDOFF_MARGIN_S": f"{self.handoff_margin_s:g}",
            **({"EVENTS_TABLE": self.events_table} if self.events_table else {}),
        }


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise PollerSettingsError(
            f"{name} is not set; the poller needs it (see docs/operations.md)"
        )
    return value


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        raise PollerSettingsError(
            f"{name}={text!r} is not a number; expected {low:g}..{high:g}"
        ) from None
    if not low <= value <= high:
        raise PollerSettingsError(f"{name}={text} is out of range; expected {low:g}..{high:g}")
    return value


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text not in _TRUE | _FALSE:
        raise PollerSettingsError(f"{name}={text!r} is not a switch; expected 1 or 0")
    return text in _TRUE
