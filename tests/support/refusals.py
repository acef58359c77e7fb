"""Jobs served by the oversized test agent, and hooks that make DynamoDB or SNS refuse calls."""

# The refusals are made here, on the client, with the answers the real services send: moto
# half-applies an UpdateItem it refuses, so its own refusal must not be what is tested.

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from botocore.awsrequest import AWSResponse

from agentjobs.protocol import JobStatus, format_time
from agentjobs.record import JobRecord
from agentjobs.store import JobStore
from testbed.local_runtime import agent_cmd
from testbed.poller import PollerRig

OVERSIZED_AGENT_CMD = agent_cmd("oversized_agent")


def running_job(rig: PollerRig, mode: str, *, runtime_s: float = 600) -> str:
    """A RUNNING record, as the agent writes it, in a session the oversized agent serves in
    `mode`; with a negative `runtime_s` its deadline has already passed."""
    now = datetime.now(UTC)
    submitted = now - timedelta(seconds=max(0.0, -runtime_s) + 1)
    record = JobRecord(
        job_id=uuid.uuid4().hex,
        session_id=f"{mode}-{uuid.uuid4()}",
        kind="synthetic",
        status=JobStatus.RUNNING,
        submitted_at=format_time(submitted),
        updated_at=format_time(submitted),
        max_runtime_s=max(runtime_s, 1),
        deadline_at=format_time(now + timedelta(seconds=runtime_s)),
    )
    JobStore(rig.moto.client("dynamodb"), rig.resources.table).create_running(record)
    return record.job_id


class Refusals:
    """Answers the calls `choose` picks with `refuse` instead of sending them; counts both."""

    def __init__(
        self,
        choose: Callable[[dict[str, Any]], bool],
        refuse: Callable[[str], AWSResponse],
    ) -> None:
        self._choose = choose
        self._refuse = refuse
        self._lock = threading.Lock()
        self.refused: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []

    def before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        """The botocore hook: `request` is the prepared HTTP request."""
        call = _decoded(request)
        with self._lock:
            if self._choose(call):
                self.refused.append(call)
                return self._refuse(request.url)
            self.sent.append(call)
        return None


def _decoded(request: Any) -> dict[str, Any]:
    body = request.body or b""
    text = body.decode() if isinstance(body, bytes) else str(body)
    if text.startswith("{"):
        decoded: dict[str, Any] = json.loads(text)
        return decoded
    return {name: values[0] for name, values in parse_qs(text).items()}


def is_finish(call: dict[str, Any]) -> bool:
    """An UpdateItem of the poller's `finish` transition."""
    return "finished_at = :finished" in str(call.get("UpdateExpression", ""))


def finish_error_code(call: dict[str, Any]) -> str | None:
    """The error code a `finish` call would store."""
    error = call.get("ExpressionAttributeValues", {}).get(":error")
    return str(error["M"]["code"]["S"]) if error else None
