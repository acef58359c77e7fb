"""The long step: research a topic source by source and write a brief, as an agentjobs job."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentjobs.agent import JobContext, JobFailed
from assistant.models import NoModelError, job_model

WRITER_PROMPT = (
    "You are a research assistant. Keep notes short and factual, and say where you are unsure."
)


class ResearchRequest(BaseModel):
    """What to research, from how many sources, and how long to wait between sources."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(max_length=200)
    sources: int = Field(default=3, ge=1, le=10)
    pause_s: float = Field(default=1.0, ge=0, le=60)
    """Seconds between two sources: the rate limit a real source would ask for."""

    @field_validator("topic")
    @classmethod
    def _topic_is_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a topic: a non-empty string")
        return value.strip()


def research(params: ResearchRequest, ctx: JobContext) -> dict[str, Any]:
    """Take notes from each source, then write the brief; progress after every step."""
    # Strands loads in seconds: only the job's own process pays for it.
    from strands import Agent  # noqa: PLC0415

    try:
        model, model_id = job_model()
    except NoModelError as exc:
        raise JobFailed(str(exc)) from None
    writer = Agent(model=model, system_prompt=WRITER_PROMPT, callback_handler=None)
    steps = params.sources + 1
    notes = []
    for number in range(1, params.sources + 1):
        ctx.progress(100 * (number - 1) / steps, f"reading source {number} of {params.sources}")
        text = _ask(writer, f"Source {number} on {params.topic}: write three lines of notes.")
        notes.append({"source": number, "notes": text})
        if number < params.sources:
            ctx.sleep(params.pause_s)
    ctx.progress(100 * params.sources / steps, "writing the brief")
    brief = _ask(writer, f"Write a short brief on {params.topic} from your notes.")
    return {"topic": params.topic, "brief": brief, "notes": notes, "model_id": model_id}


def _ask(writer: Any, prompt: str) -> str:
    try:
        return str(writer(prompt)).strip()
    except Exception as exc:
        # The error's class (ThrottlingException, AccessDeniedException) says what to fix;
        # its text may hold request details, so it stays in the agent's log.
        raise JobFailed(f"the model could not answer: {type(exc).__name__}") from exc
