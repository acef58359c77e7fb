"""One job as this process holds it in memory, and the tracker that shows it on /ping."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentjobs.agent.child import ChildJob
from agentjobs.agent.declarations import JobSpec
from agentjobs.agent.outcomes import StopReason
from agentjobs.protocol import parse_time, utc_now
from agentjobs.record import JobRecord


class TaskTracker(Protocol):
    """The part of BedrockAgentCoreApp that turns /ping HealthyBusy while work runs."""

    def add_async_task(self, name: str, metadata: dict[str, Any] | None = None) -> int: ...

    def complete_async_task(self, task_id: int) -> bool: ...


@dataclass
class LiveJob:
    """One job in this process. `record` is replaced, never mutated, under the runner's lock."""

    record: JobRecord
    spec: JobSpec
    params: Any
    deadline: float
    session_id: str
    """Where this process runs the job: the submit's session, or the one it was resumed in."""
    state_text: str | None = None
    """The last checkpoint's state, encoded: what a retry or a resumed attempt continues from."""
    resumed_text: str | None = None
    """The state this attempt started from (its `resumed_state`), encoded."""
    milestone: int = 0
    """The last multiple of 10 % the job's progress crossed in this attempt."""
    checkpoint_event_at: float | None = None
    checkpoint_events: int = 0
    task_id: int | None = None
    child: ChildJob | None = None
    stop_reason: StopReason | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def attempt(self) -> int:
        return self.record.attempt


def monotonic_deadline(record: JobRecord) -> float:
    """The monotonic time the job must end by: its record's deadline (for a resumed job,
    what is left of it)."""
    deadline = record.deadline()
    if deadline is None:
        return time.monotonic() + record.max_runtime_s
    left = (deadline - parse_time(utc_now())).total_seconds()
    return time.monotonic() + min(left, record.max_runtime_s)
