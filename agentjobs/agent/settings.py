"""The job library's settings, read once from the environment into a frozen dataclass."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from agentjobs.limits import DEFAULT_MAX_JOBS_PER_SESSION

DEFAULT_RESULT_RETENTION_DAYS = 30


@dataclass(frozen=True)
class AgentSettings:
    """What every job agent needs from its environment. Missing names are None: the agent
    still starts and answers /ping, and a submit that needs them answers a clear error."""

    jobs_table: str | None
    results_bucket: str | None
    result_retention_days: int = DEFAULT_RESULT_RETENTION_DAYS
    completion_queue_url: str | None = None
    """COMPLETION_QUEUE_URL: where a finished job is signalled to the poller (the fast
    completion path); unset, the poller's schedule alone notices finished jobs."""
    max_jobs_per_session: int = DEFAULT_MAX_JOBS_PER_SESSION
    """MAX_JOBS_PER_SESSION: jobs one session may run at once; a submit past it is refused."""
    events_table: str | None = None
    """EVENTS_TABLE: the history table jobs' events are appended to; unset, no history is
    kept and nothing else changes."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AgentSettings:
        """Read the settings; raise ValueError naming the variable when one is malformed."""
        source = os.environ if env is None else env
        return cls(
            jobs_table=source.get("JOBS_TABLE") or None,
            results_bucket=source.get("RESULTS_BUCKET") or None,
            result_retention_days=_positive_int(
                source, "RESULT_RETENTION_DAYS", DEFAULT_RESULT_RETENTION_DAYS, "days"
            ),
            completion_queue_url=source.get("COMPLETION_QUEUE_URL", "").strip() or None,
            max_jobs_per_session=_positive_int(
                source, "MAX_JOBS_PER_SESSION", DEFAULT_MAX_JOBS_PER_SESSION, "jobs"
            ),
            events_table=source.get("EVENTS_TABLE", "").strip() or None,
        )


def _positive_int(source: Mapping[str, str], name: str, default: int, unit: str) -> int:
    text = source.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a whole number of {unit} >= 1; got {text!r}")
    return value
