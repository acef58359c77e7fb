"""The agent's edge: one payload in, one JSON answer out, whatever happens inside."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from agentjobs.agent.runner import JobRunner
from agentjobs.protocol import (
    Action,
    ErrorCode,
    PingRequest,
    ProtocolError,
    SubmitRequest,
    encode_json,
    error_answer,
    parse_caller,
    parse_request,
)

log = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = "the agent could not handle this request; the error was logged"


class RequestHandler:
    """Turns decoded payloads into answers; never raises, never leaks internals."""

    def __init__(self, runner: JobRunner) -> None:
        self._runner = runner
        # Direct HTTP without the session header: this process stands for one session.
        self.local_session_id = f"local-{uuid.uuid4().hex}"

    def handle(self, payload: object, session_id: str | None, owner: str | None) -> dict[str, Any]:
        """Answer one request (HTTP 200 always: AgentCore hides a 4xx/5xx body from callers)."""
        session: str | None = None
        job_id: str | None = None
        try:
            # Headers and payload are checked before any of their text is used or logged.
            caller = parse_caller(session_id, owner)
            session = caller.session_id or self.local_session_id
            request = parse_request(payload)
            if isinstance(request, SubmitRequest):
                answer = self._runner.submit(request, session, caller.owner)
            elif isinstance(request, PingRequest):
                answer = self._runner.ping(session, caller.owner)
            elif request.action == Action.RESUME and request.job_id is not None:
                job_id = request.job_id
                answer = self._runner.resume(request.job_id, session, caller.owner)
            elif request.action == Action.SUSPEND and request.job_id is not None:
                job_id = request.job_id
                answer = self._runner.suspend(request.job_id, session, caller.owner)
            else:
                job_id = request.job_id
                answer = self._runner.answer(request, session, caller.owner)
            # The SDK encodes the answer as UTF-8 after we return: text that cannot be
            # encoded would become an HTTP 500 carrying the codec's message.
            encode_json(answer).encode()
            return answer
        except ProtocolError as exc:
            log.info("request refused in session %s: %s", session or "(unchecked)", exc.code)
            return exc.answer()
        except Exception:
            log.exception("request failed in session %s (job %s)", session, job_id)
            return error_answer(ErrorCode.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE)
