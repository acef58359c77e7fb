"""An existing chat agent that keeps its own entrypoint and starts a long job from it, or from
a Strands tool its model calls: durable, collected and notified like any job."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from typing import Any

from bedrock_agentcore import RequestContext
from pydantic import BaseModel, Field

from agentjobs.agent import JobApp, JobContext

app = JobApp()
started_by_tools: list[dict[str, Any]] = []


class Digest(BaseModel):
    topic: str
    seconds: float = Field(default=0.5, ge=0, le=60)


@app.job("digest")
def digest(params: Digest, ctx: JobContext) -> dict[str, Any]:
    ctx.progress(50, f"reading about {params.topic}")
    ctx.sleep(params.seconds)
    return {"topic": params.topic, "summary": f"a digest of {params.topic}"}


@app.entrypoint
def chat(payload: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    message = str(payload.get("message", ""))
    if message.startswith("digest "):
        job = app.start_job("digest", Digest(topic=message.removeprefix("digest ")))
        return {"reply": "I started a digest in the background", "job": job}
    if message.startswith("tool "):
        reply = _agent_with_tools()(message.removeprefix("tool "))
        return {"reply": str(reply), "job": started_by_tools.pop()}
    return {"reply": f"you said: {message}", "session_id": context.session_id}


def _agent_with_tools() -> Any:
    # Strands loads in seconds: only the turns that use it pay for it.
    from strands import Agent, tool  # noqa: PLC0415

    @tool
    def start_digest(topic: str) -> str:
        """Start a digest of `topic` in the background; returns the job to follow."""
        job = app.start_job("digest", {"topic": topic, "seconds": 0.2})
        started_by_tools.append(job)
        return json.dumps(job)

    return Agent(model=_ToolCallingModel(), tools=[start_digest], callback_handler=None)


def _ToolCallingModel() -> Any:
    from strands.models.model import Model  # noqa: PLC0415

    class ToolCallingModel(Model):
        """Calls start_digest with the user's words, then answers with the tool's result."""

        def update_config(self, **model_config: Any) -> None:
            return None

        def get_config(self) -> dict[str, Any]:
            return {"model_id": "tool-calling-test-model"}

        def structured_output(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

        async def stream(self, messages: Any, *args: Any, **kwargs: Any) -> AsyncIterable[Any]:
            last = messages[-1]["content"]
            results = [block["toolResult"] for block in last if "toolResult" in block]
            yield {"messageStart": {"role": "assistant"}}
            if not results:
                topic = next(block["text"] for block in last if "text" in block)
                yield {
                    "contentBlockStart": {
                        "start": {"toolUse": {"toolUseId": "call-1", "name": "start_digest"}}
                    }
                }
                yield {
                    "contentBlockDelta": {
                        "delta": {"toolUse": {"input": json.dumps({"topic": topic})}}
                    }
                }
                yield {"contentBlockStop": {}}
                yield {"messageStop": {"stopReason": "tool_use"}}
                return
            text = results[0]["content"][0].get("text", "")
            yield {"contentBlockStart": {"start": {}}}
            yield {"contentBlockDelta": {"delta": {"text": f"started: {text}"}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}

    return ToolCallingModel()


if __name__ == "__main__":
    app.run()
