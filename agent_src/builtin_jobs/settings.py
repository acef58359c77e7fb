"""Settings only the project's own jobs read from the environment, when a job needs them."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

SCRIPTED_MODEL_ENV = "JOBAGENT_SCRIPTED_MODEL"
"""Tests set this to 1 so the `agent` job uses a canned offline model instead of Bedrock."""

MODEL_READ_TIMEOUT_ENV = "MODEL_READ_TIMEOUT_S"
DEFAULT_MODEL_READ_TIMEOUT_S = 900.0
"""Seconds the `agent` job waits on one Bedrock response. Strands' BedrockModel sets botocore's
read timeout to 120 s, which long tool chains outgrow (time to first token grows with the
context: https://github.com/aws/agentcore-cli/issues/1303); AWS's fix for such timeouts is a
longer read timeout (https://repost.aws/knowledge-center/bedrock-large-model-read-timeouts).
15 minutes covers long turns and still frees a job from a hung connection."""


@dataclass(frozen=True)
class JobSettings:
    """MODEL_ID, the scripted model switch, the model's read timeout, RESULTS_BUCKET."""

    model_id: str | None
    scripted_model: bool
    model_read_timeout_s: float
    results_bucket: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JobSettings:
        """Read the settings; ValueError naming the variable when one is malformed."""
        source = os.environ if env is None else env
        return cls(
            model_id=source.get("MODEL_ID") or None,
            scripted_model=source.get(SCRIPTED_MODEL_ENV) == "1",
            model_read_timeout_s=_seconds(source, MODEL_READ_TIMEOUT_ENV),
            results_bucket=source.get("RESULTS_BUCKET") or None,
        )


def _seconds(source: Mapping[str, str], name: str) -> float:
    text = source.get(name, "").strip()
    if not text:
        return DEFAULT_MODEL_READ_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 1 <= value <= 3600:
        raise ValueError(f"{name} must be a number of seconds from 1 to 3600; got {text!r}")
    return value
