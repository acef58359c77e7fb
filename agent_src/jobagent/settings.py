"""The agent's settings, read once from the environment into a frozen dataclass."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_RESULT_RETENTION_DAYS = 30

SCRIPTED_MODEL_ENV = "JOBAGENT_SCRIPTED_MODEL"
"""Tests set this to 1 so the `agent` kind uses a canned offline model instead of Bedrock."""


@dataclass(frozen=True)
class Settings:
    """What the agent needs from its environment. Missing names are None: the agent still
    starts and answers /ping, and a submit that needs them answers a clear error."""

    jobs_table: str | None
    results_bucket: str | None
    model_id: str | None
    result_retention_days: int = DEFAULT_RESULT_RETENTION_DAYS
    scripted_model: bool = False
    completion_queue_url: str | None = None
    """COMPLETION_QUEUE_URL: where a finished job is signalled to the poller (the fast
    completion path); unset, the poller's schedule alone notices finished jobs."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; raise ValueError naming the variable when one is malformed."""
        source = os.environ if env is None else env
        retention_text = source.get("RESULT_RETENTION_DAYS", "").strip()
        retention = DEFAULT_RESULT_RETENTION_DAYS
        if retention_text:
            try:
                retention = int(retention_text)
            except ValueError:
                retention = 0
            if retention < 1:
                raise ValueError(
                    f"RESULT_RETENTION_DAYS must be a whole number of days >= 1; "
                    f"got {retention_text!r}"
                )
        return cls(
            jobs_table=source.get("JOBS_TABLE") or None,
            results_bucket=source.get("RESULTS_BUCKET") or None,
            model_id=source.get("MODEL_ID") or None,
            result_retention_days=retention,
            scripted_model=source.get(SCRIPTED_MODEL_ENV) == "1",
            completion_queue_url=source.get("COMPLETION_QUEUE_URL", "").strip() or None,
        )
