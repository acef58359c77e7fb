"""InvokeAgentRuntime with a JSON payload, and the decoding of the agent's JSON answer."""

from __future__ import annotations

import json
from typing import Any

from agentjobs.protocol import encode_json

DEFAULT_QUALIFIER = "DEFAULT"


def invoke_session(
    client: Any,
    runtime_arn: str,
    session_id: str,
    payload: dict[str, Any],
    *,
    qualifier: str = DEFAULT_QUALIFIER,
) -> tuple[int, bytes]:
    """Send `payload` to the agent in `session_id`; the HTTP status AgentCore reports and the
    answer's bytes. ClientError and BotoCoreError pass through: callers differ in what a
    refusal means to them (the CLI reports it, the poller retries next tick)."""
    answer = client.invoke_agent_runtime(
        agentRuntimeArn=runtime_arn,
        runtimeSessionId=session_id,
        qualifier=qualifier,
        contentType="application/json",
        accept="application/json",
        payload=encode_json(payload).encode(),
    )
    body: bytes = answer["response"].read()
    return int(answer.get("statusCode", 200)), body


class AnswerError(ValueError):
    """The agent's answer is not a JSON object."""


def decode_answer(body: bytes) -> dict[str, Any]:
    """The agent's answer as a JSON object; AnswerError saying what it was instead."""
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise AnswerError("the agent answered something that is not JSON") from exc
    if not isinstance(answer, dict):
        raise AnswerError("the agent answered something that is not a JSON object")
    return answer


def refusal_of(answer: dict[str, Any]) -> dict[str, Any] | None:
    """The agent's error object when the answer is a refusal (an `error` and no `status`)."""
    error = answer.get("error")
    if "status" not in answer and isinstance(error, dict):
        return error
    return None
