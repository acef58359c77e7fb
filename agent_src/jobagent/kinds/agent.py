"""The `agent` kind: a Strands agent with a Bedrock model works a prompt through several steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentjobs.limits import MAX_PROMPT_BYTES
from agentjobs.protocol import JobKind
from jobagent.kinds.base import (
    JobContext,
    JobFailed,
    KindSpec,
    int_field,
    invalid_input,
    reject_unknown,
)
from jobagent.settings import Settings

SYSTEM_PROMPT = (
    "You are a careful analyst working on a long task in the background. "
    "Work step by step, keep each answer short and concrete, and state assumptions."
)


@dataclass(frozen=True)
class AgentInput:
    """The task and how many working steps to take between planning and the final answer."""

    prompt: str
    steps: int = 3


def parse(job_input: dict[str, Any], settings: Settings) -> AgentInput:
    """Validate the input: a non-empty `prompt` and optional `steps` (1 to 8)."""
    reject_unknown(job_input, {"prompt", "steps"}, JobKind.AGENT)
    prompt = job_input.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid_input("'prompt' must be a non-empty string: the task for the agent")
    if len(prompt.encode()) > MAX_PROMPT_BYTES:
        raise invalid_input(f"'prompt' must be at most {MAX_PROMPT_BYTES} bytes (UTF-8)")
    return AgentInput(prompt=prompt, steps=int_field(job_input, "steps", 3, 1, 8))


def step_prompts(params: AgentInput) -> list[tuple[str, str]]:
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


def run(params: AgentInput, context: JobContext) -> dict[str, Any]:
    """Run the turns on one agent (so each sees the conversation so far), reporting each."""
    # The child reads its own copy of the settings from the environment it inherited.
    settings = Settings.from_env()
    model, model_id = _model(settings)
    from strands import Agent  # noqa: PLC0415 - Strands takes seconds to import

    agent = Agent(model=model, system_prompt=SYSTEM_PROMPT, callback_handler=None)
    turns = step_prompts(params)
    transcript = []
    usage: dict[str, int] = {}
    context.report(5.0, "agent ready")
    for done, (name, prompt) in enumerate(turns, start=1):
        context.check_stop()
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
        context.report(5.0 + 90.0 * done / len(turns), f"finished {name}")
    return {
        "answer": transcript[-1]["text"],
        "steps": transcript[:-1],
        "model_id": model_id,
        "usage": usage,
    }


def _model(settings: Any) -> tuple[Any, str]:
    if settings.scripted_model:
        from jobagent.kinds.scripted_model import ScriptedModel  # noqa: PLC0415

        return ScriptedModel(), ScriptedModel.MODEL_ID
    if not settings.model_id:
        raise JobFailed("the agent has no MODEL_ID configured")
    from strands.models.bedrock import BedrockModel  # noqa: PLC0415

    return BedrockModel(model_id=settings.model_id), settings.model_id


SPEC = KindSpec(
    kind=JobKind.AGENT, parse=parse, run=run, in_child=lambda params: True, needs_model=True
)
