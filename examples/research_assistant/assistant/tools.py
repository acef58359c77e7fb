"""The chat's two tools: start a research job, and read how a research job is going."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentjobs.agent import JobApp


@dataclass
class ChatTurn:
    """Who is chatting, and the jobs this turn's tools started (the chat answer lists them)."""

    session_id: str
    owner: str | None
    started: list[dict[str, Any]] = field(default_factory=list)


def make_tools(app: JobApp, turn: ChatTurn) -> list[Any]:
    """Strands tools bound to this turn: the job they start runs in the caller's session."""
    from strands import tool  # noqa: PLC0415 - Strands takes seconds to import

    @tool
    def start_research(topic: str, sources: int = 3) -> str:
        """Start researching `topic` in the background, reading `sources` sources (1 to 10).
        Returns at once with the job's id; the brief arrives when the job ends."""
        answer = app.start_job("research", {"topic": topic, "sources": sources})
        if "error" not in answer:
            turn.started.append(answer)
        return json.dumps(answer)

    @tool
    def research_status(job_id: str) -> str:
        """How research job `job_id` is going: its status, progress, and the brief once done."""
        return json.dumps(app.job_result(job_id))

    return [start_research, research_status]
