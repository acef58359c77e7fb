"""The `agent` job: a Strands agent with a Bedrock model works a prompt through several steps."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentjobs.agent import JobContext, JobFailed
from agentjobs.limits import MAX_PROMPT_BYTES
from builtin_jobs.settings import JobSettings

SYSTEM_PROMPT = (
    "You are a careful analyst working on a long task in the background. "
    "Work step by step, keep each answer short and concrete, and state assumptions."
)


class AnalystInput(BaseModel):
    """The task and how many working steps to take between planning and the final answer."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    prompt: str
    steps: int = Field(default=3, ge=1, le=8)

    @field_validator("prompt")
    @classmethod
    def _prompt_fits(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a non-empty string: the task for the agent")
        if len(value.encode()) > MAX_PROMPT_BYTES:
            raise ValueError(f"must be at most {MAX_PROMPT_BYTES} bytes (UTF-8)")
        return value


def missing_model() -> str | None:
    """Why the job cannot run here: no MODEL_ID (and no scripted model); None when it can."""
    try:
        settings = JobSettings.from_env()
    except ValueError as exc:
        return str(exc)
    if settings.model_id or settings.scripted_model:
        return None
    return "it needs a model, and this agent has no MODEL_ID configured"


def step_prompts(params: AnalystInput) -> list[tuple[str, str]]:
    """(name, prompt) for each turn: plan, work each step, then answer."""
    turns = [
        (
            "plan",
            f"Task: {params.prompt}\n\nPlan how to do this task in exactly {params.steps} "
            "numbered steps, one line each. Do not do the work yet.",
        )
    ]
    turns += [
        (f"step {i}", f"Carry out step {i} of your plan. Report what you found.")
        for i in range(1, params.steps + 1)
    ]
    turns.append(("answer", "Write the final answer to the task, using what the steps found."))
    return turns


def run_analyst(params: AnalystInput, ctx: JobContext) -> dict[str, Any]:
    """Run the turns on one agent (so each sees the conversation so far), reporting each."""
    model, model_id = _model(JobSettings.from_env())
    from strands import Agent  # noqa: PLC0415 - Strands takes seconds to import

    agent = Agent(model=model, system_prompt=SYSTEM_PROMPT, callback_handler=None)
    turns = step_prompts(params)
    transcript = []
    usage: dict[str, int] = {}
    ctx.progress(5.0, "agent ready")
    for done, (name, prompt) in enumerate(turns, start=1):
        ctx.check_stop()
        try:
            answer = agent(prompt)
        except Exception as exc:
            # The model's own error names what went wrong (throttling, access, validation).
            raise JobFailed(f"the model call for '{name}' failed: {type(exc).__name__}") from exc
        text = str(answer).strip()
        transcript.append({"step": name, "text": text})
        # The agent's usage is cumulative over its turns: the last one is the total.
        totals = answer.metrics.accumulated_usage
        usage = {
            "input_tokens": int(totals.get("inputTokens", 0)),
            "output_tokens": int(totals.get("outputTokens", 0)),
        }
        ctx.progress(5.0 + 90.0 * done / len(turns), f"finished {name}")
    return {
        "answer": transcript[-1]["text"],
        "steps": transcript[:-1],
        "model_id": model_id,
        "usage": usage,
    }


def _model(settings: JobSettings) -> tuple[Any, str]:
    if settings.scripted_model:
        from builtin_jobs.scripted_model import ScriptedModel  # noqa: PLC0415

        return ScriptedModel(), ScriptedModel.MODEL_ID
    if not settings.model_id:
        raise JobFailed("the agent has no MODEL_ID configured")
    return bedrock_model(settings.model_id, settings.model_read_timeout_s), settings.model_id


def bedrock_model(model_id: str, read_timeout_s: float) -> Any:
    """Strands' BedrockModel for `model_id`, waiting up to `read_timeout_s` for a response."""
    from botocore.config import Config  # noqa: PLC0415
    from strands.models.bedrock import BedrockModel  # noqa: PLC0415

    return BedrockModel(model_id=model_id, boto_client_config=Config(read_timeout=read_timeout_s))
