"""Bedrock model ids: the default the stack deploys with, and which forms are accepted."""

from __future__ import annotations

import re

DEFAULT_MODEL_ID = "global.anthropic.claude-sonnet-4-6"
"""The model the `agent` kind uses unless `-c modelId=...` says otherwise (docs/deploy.md).

Claude Sonnet 4.6 through Bedrock's global cross-region inference profile, callable from
every commercial region, so the default works wherever AgentCore Runtime runs. The `agent`
kind calls its model through Strands' BedrockModel, that is the Converse API, which serves
Claude by ARN-versioned model ids; Anthropic's Bedrock page lists Sonnet 4.6 as the newest
Sonnet there with a `global` profile, while later Claude models are served on Bedrock's
Messages-API endpoint instead (Anthropic docs, "Claude on Amazon Bedrock"). Geographic
profiles keep requests in one area (`us.`, `eu.`, `jp.` + `anthropic.claude-sonnet-4-6`).
Bedrock sets its own lifecycle dates, and new customers cannot use a Legacy model: run
`agentjobs doctor` (it reads the model's lifecycle) before relying on another id."""

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
