"""Bedrock model ids: the default the stack deploys with, and which forms are accepted."""

from __future__ import annotations

import re

DEFAULT_MODEL_ID = "global.anthropic.claude-sonnet-5-5"
"""The model the `agent` kind uses unless `-c modelId=...` says otherwise (docs/deploy.md).

Claude Sonnet 5.5 through Bedrock's global cross-region inference profile: a current
(Active) Anthropic model on Bedrock that every commercial region can call, so the default
works wherever AgentCore Runtime runs. Geographic profiles keep requests in one area
(`us.`, `eu.`, `jp.`, `au.` + `anthropic.claude-sonnet-5-5`). Bedrock sets its own
lifecycle dates, and new customers cannot use a Legacy model: check the model card before
changing this."""

INFERENCE_PROFILE_PREFIXES = frozenset({"us", "eu", "apac", "au", "ca", "jp", "us-gov", "global"})
"""Leading segments that make a model id a cross-region inference profile."""

_MODEL_ID = re.compile(r"[a-z0-9][a-z0-9.\-]*(:[a-z0-9\-]+)?")


class ModelIdError(ValueError):
    """A model id of a form Bedrock does not use; the message names it and what is allowed."""


def parse_model_id(text: str) -> str:
    """`text` when it is a Bedrock model or inference profile id; ModelIdError otherwise."""
    if not _MODEL_ID.fullmatch(text) or "." not in text:
        raise ModelIdError(
            f"{text!r} is not a Bedrock model or inference profile id; allowed: "
            "ids such as anthropic.claude-3-haiku-20240307-v1:0 or us.amazon.nova-pro-v1:0"
        )
    return text


def split_profile(model_id: str) -> tuple[str | None, str]:
    """(inference-profile prefix or None, base model id) of a model id."""
    prefix, _, base = model_id.partition(".")
    if prefix in INFERENCE_PROFILE_PREFIXES and base:
        return prefix, base
    return None, model_id
