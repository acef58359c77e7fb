"""The model the chat and the job use: Bedrock (MODEL_ID), or the offline scripted model."""

from __future__ import annotations

import os
from typing import Any

SCRIPTED_MODEL_ENV = "JOBAGENT_SCRIPTED_MODEL"
"""1 selects the scripted model: the local stack sets it, since no Bedrock model is there."""

MODEL_READ_TIMEOUT_S = 900
"""Strands' BedrockModel waits 120 s for a response by default, which long answers outgrow."""


def chat_model() -> Any:
    """The model of the chat turn, which calls the tools."""
    if os.environ.get(SCRIPTED_MODEL_ENV) == "1":
        from assistant.scripted_model import ScriptedModel  # noqa: PLC0415

        return ScriptedModel()
    return _bedrock()[0]


def job_model() -> tuple[Any, str]:
    """The model of the research job, and its id for the result."""
    if os.environ.get(SCRIPTED_MODEL_ENV) == "1":
        from assistant.scripted_model import ScriptedModel  # noqa: PLC0415

        return ScriptedModel(), ScriptedModel.MODEL_ID
    return _bedrock()


class NoModelError(RuntimeError):
    """Neither MODEL_ID nor the scripted model is set: there is no model to call."""


def _bedrock() -> tuple[Any, str]:
    model_id = os.environ.get("MODEL_ID")
    if not model_id:
        raise NoModelError("this agent has no MODEL_ID configured")
    from botocore.config import Config  # noqa: PLC0415
    from strands.models.bedrock import BedrockModel  # noqa: PLC0415

    config = Config(read_timeout=MODEL_READ_TIMEOUT_S)
    return BedrockModel(model_id=model_id, boto_client_config=config), model_id
