"""Errors injected into the local runtime's calls (local only), so every AWS error can be tested."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.agentcore.exceptions import MODELED_ERRORS


@dataclass
class Fault:
    """An injected error: the next `count` matching calls fail with `error` (local only)."""

    error: str
    operation: str | None = None
    session_id: str | None = None
    count: int = 1
    message: str = ""

    def matches(self, operation: str, session_id: str) -> bool:
        """Whether a call of `operation` on `session_id` is one this fault hits."""
        return self.operation in (None, operation) and self.session_id in (None, session_id)


@dataclass
class FaultPlan:
    """Errors to inject, so that callers' handling of every AWS error can be tested."""

    faults: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> None:
        """Queue `fault`."""
        self.faults.append(fault)

    def clear(self) -> None:
        """Forget every queued fault."""
        self.faults.clear()

    def take(self, operation: str, session_id: str) -> None:
        """Raise the first queued fault that hits this call, if any."""
        for fault in self.faults:
            if fault.matches(operation, session_id):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                raise MODELED_ERRORS[fault.error](fault.message)

    def describe(self) -> list[dict[str, Any]]:
        """The queued faults, as POST /faults answers them."""
        return [
            {
                "error": f.error,
                "operation": f.operation,
                "sessionId": f.session_id,
                "count": f.count,
                "message": f.message,
            }
            for f in self.faults
        ]
