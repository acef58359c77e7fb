"""The agent's edge: one payload in, one JSON answer out, whatever happens inside."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from agentjobs.limits import MAX_JOB_ID_CHARS
from agentjobs.protocol import (
    ErrorCode,
    PingRequest,
    ProtocolError,
    SubmitRequest,
    error_answer,
    parse_request,
)
from jobagent.runner import JobRunner

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
        session = session_id or self.local_session_id
        try:
            request = parse_request(payload)
            if isinstance(request, SubmitRequest):
                return self._runner.submit(request, session, owner)
            if isinstance(request, PingRequest):
                return self._runner.ping(session, owner)
            return self._runner.answer(request, session, owner)
        except ProtocolError as exc:
            log.info("request refused in session %s: %s", session, exc.code)
            return exc.answer()
        except Exception:
            log.exception(
                "request failed in session %s (job %s)", session, _job_id_for_log(payload)
            )
            return error_answer(ErrorCode.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE)


def _job_id_for_log(payload: object) -> str | None:
    job_id = payload.get("job_id") if isinstance(payload, dict) else None
    return job_id if isinstance(job_id, str) and len(job_id) <= MAX_JOB_ID_CHARS else None
