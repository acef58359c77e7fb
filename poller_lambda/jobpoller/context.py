"""A Lambda context for running the handler outside Lambda (local schedule, tests, benchmarks)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LocalContext:
    """Quacks like the Lambda context object: the handler asks it for the time left."""

    budget_s: float = 240.0
    function_name: str = "agentjobs-poller-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:agentjobs-poller"
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left of the budget, as Lambda reports the time left before its timeout."""
        return max(0, int((self.budget_s - (time.monotonic() - self._started)) * 1000))
