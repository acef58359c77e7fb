"""The chat's two tools: start a research job, and read how a research job is going."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from agentjobs.agent import JobApp
from agentjobs.record import from_item, visible_to

log = logging.getLogger(__name__)


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
        return json.dumps(read_job(job_id, turn))

    return [start_research, research_status]


def read_job(job_id: str, turn: ChatTurn) -> dict[str, Any]:
    """The job as the job table has it (what `agentjobs status` shows): kept current by the
    poller, which collects progress and the outcome; only the caller's own jobs."""
    import boto3  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    unknown = {"job_id": job_id, "status": "UNKNOWN"}
    if len(job_id) > 128:
        return unknown
    try:
        item = boto3.client("dynamodb").get_item(
            TableName=os.environ["JOBS_TABLE"], Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )
        record = from_item(item["Item"]) if "Item" in item else None
    except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
        log.warning("job %s could not be read: %s", job_id, type(exc).__name__)
        return {"job_id": job_id, "error": "the job table could not be read now; try again"}
    if record is None or not visible_to(record, turn.session_id, turn.owner):
        return unknown
    return record.to_answer(with_outcome=True)
