"""An offline Strands model that calls this agent's tools deterministically, for tests and
the local stack: JOBAGENT_SCRIPTED_MODEL=1 selects it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any

from strands.models.model import Model
from strands.types.content import Messages
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec

JOB_ID = re.compile(r"\b[0-9a-f]{32}\b")
HELP = (
    "I can research a topic in the background (say 'research <topic>') and tell you how a "
    "research job is going (give me its id)."
)


class ScriptedModel(Model):
    """With tools: 'research X' calls start_research, a job id calls research_status, then it
    answers with what the tool said. Without tools (in the job): a short note per turn."""

    MODEL_ID = "scripted-offline-model"

    def __init__(self) -> None:
        self._config: dict[str, Any] = {"model_id": self.MODEL_ID}
        self.turns = 0

    def update_config(self, **model_config: Any) -> None:
        self._config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        return self._config

    def structured_output(
        self, output_model: Any, prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, Any], None]:
        raise NotImplementedError("the scripted model gives text and tool calls only")

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[StreamEvent]:
        self.turns += 1
        last = messages[-1]["content"] if messages else []
        tool_results = [block["toolResult"] for block in last if "toolResult" in block]
        asked = " ".join(block["text"] for block in last if "text" in block).strip()
        if tool_results:
            said = " ".join(c.get("text", "") for r in tool_results for c in r["content"])
            events = _text(f"{_tool_used(messages)} answered: {said}")
        elif tool_specs and (call := _tool_call(asked)) is not None:
            events = _tool_use(f"call-{self.turns}", *call)
        elif tool_specs:
            events = _text(HELP)
        else:
            events = _text(f"Notes {self.turns}: {asked.splitlines()[0][:120] if asked else ''}")
        for event in events:
            yield event


def _tool_call(asked: str) -> tuple[str, dict[str, Any]] | None:
    if (found := JOB_ID.search(asked)) is not None:
        return "research_status", {"job_id": found.group(0)}
    if asked.lower().startswith("research "):
        return "start_research", {"topic": asked[len("research ") :]}
    return None


def _tool_used(messages: Messages) -> str:
    for message in reversed(messages):
        for block in message["content"]:
            if "toolUse" in block:
                return str(block["toolUse"]["name"])
    return "the tool"


def _tool_use(call_id: str, name: str, arguments: dict[str, Any]) -> list[StreamEvent]:
    return [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": call_id, "name": name}}}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(arguments)}}}},
        {"contentBlockStop": {}},
        {"messageStop": {"stopReason": "tool_use"}},
    ]


def _text(text: str) -> list[StreamEvent]:
    return [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockStart": {"start": {}}},
        {"contentBlockDelta": {"delta": {"text": text}}},
        {"contentBlockStop": {}},
        {"messageStop": {"stopReason": "end_turn"}},
    ]
