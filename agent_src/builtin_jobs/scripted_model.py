"""An offline Strands model with canned answers, for tests: JOBAGENT_SCRIPTED_MODEL=1 selects it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any

from strands.models.model import Model
from strands.types.content import Messages
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec


class ScriptedModel(Model):
    """Answers every turn with a short text naming the turn, like a terse real model would."""

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
        raise NotImplementedError("the scripted model gives text answers only")

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[StreamEvent]:
        self.turns += 1
        asked = _last_user_text(messages)
        first_line = asked.splitlines()[0][:80] if asked else ""
        text = f"Scripted answer {self.turns}: {first_line}"
        events: list[StreamEvent] = [
            {"messageStart": {"role": "assistant"}},
            {"contentBlockStart": {"start": {}}},
            {"contentBlockDelta": {"delta": {"text": text}}},
            {"contentBlockStop": {}},
            {"messageStop": {"stopReason": "end_turn"}},
            {
                "metadata": {
                    "usage": {
                        "inputTokens": len(asked.split()),
                        "outputTokens": len(text.split()),
                        "totalTokens": len(asked.split()) + len(text.split()),
                    },
                    "metrics": {"latencyMs": 1},
                }
            },
        ]
        for event in events:
            yield event


def _last_user_text(messages: Messages) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return " ".join(block["text"] for block in message["content"] if "text" in block)
    return ""
