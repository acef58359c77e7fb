"""A research assistant: a Strands chat agent whose long step (research) is an agentjobs job."""

from __future__ import annotations

import logging
from typing import Any

from assistant.models import NoModelError, chat_model
from assistant.research import research
from assistant.tools import ChatTurn, make_tools
from bedrock_agentcore import RequestContext

from agentjobs.agent import JobApp

log = logging.getLogger(__name__)

CHAT_PROMPT = (
    "You help people research topics. Research takes minutes: start it with start_research "
    "and tell the person the job's id; check on a job with research_status when asked."
)
USER_ID_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"

# Only definitions at import time: /ping must answer within 2 s of start, and the job's
# child process imports this module again.
app = JobApp()
app.job("research", cpu=True)(research)


@app.entrypoint
def chat(payload: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """One chat turn, `{"message": "..."}`: answered at once, whatever the tools start in the
    background (the jobs they started are listed in `jobs`)."""
    message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, str) or not message.strip():
        return _error(
            "INVALID_REQUEST",
            'send {"message": "..."} to chat, or a job request ({"action": "submit", ...})',
        )
    request = getattr(context, "request", None)
    turn = ChatTurn(
        session_id=context.session_id or "",
        owner=request.headers.get(USER_ID_HEADER) if request is not None else None,
    )
    try:
        from strands import Agent  # noqa: PLC0415 - Strands takes seconds to import

        agent = Agent(
            model=chat_model(),
            system_prompt=CHAT_PROMPT,
            tools=make_tools(app, turn),
            callback_handler=None,
        )
        reply = agent(message)
    except NoModelError as exc:
        return _error("MODEL_NOT_CONFIGURED", str(exc), turn)
    except Exception:
        # The model's or a tool's error may quote the request: it stays in the log.
        log.exception("chat turn failed in session %s", turn.session_id)
        return _error("CHAT_FAILED", "the assistant could not answer; the error was logged", turn)
    return {"reply": str(reply).strip(), "jobs": turn.started}


def _error(code: str, message: str, turn: ChatTurn | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, "jobs": turn.started if turn else []}


if __name__ == "__main__":
    app.run()
