"""What one tick did, counted under the metric names alarms and dashboards are built on."""

from __future__ import annotations

import threading
from collections import Counter

from agentjobs.metrics import Metric
from agentjobs.protocol import JobStatus

__all__ = ["FINISHED_METRIC", "Metric", "TickReport"]

FINISHED_METRIC = {
    JobStatus.SUCCEEDED: Metric.JOBS_SUCCEEDED,
    JobStatus.FAILED: Metric.JOBS_FAILED,
    JobStatus.CANCELLED: Metric.JOBS_CANCELLED,
    JobStatus.TIMED_OUT: Metric.JOBS_TIMED_OUT,
    JobStatus.LOST: Metric.JOBS_LOST,
}


class TickReport:
    """Counters shared by the tick's worker threads, and each job's last step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[Metric] = Counter()
        self.steps: dict[str, str] = {}

    def count(self, metric: Metric, amount: float = 1) -> None:
        """Add to a counter."""
        with self._lock:
            self.counts[metric] += int(amount)

    def step(self, job_id: str, step: str) -> None:
        """Record where a job got to in this tick."""
        with self._lock:
            self.steps[job_id] = step

    def summary(self) -> dict[str, object]:
        """The report as the handler returns it: counters and the jobs by step."""
        with self._lock:
            by_step: Counter[str] = Counter(self.steps.values())
            return {
                "metrics": {str(m): n for m, n in sorted(self.counts.items())},
                "jobs": dict(sorted(by_step.items())),
            }
