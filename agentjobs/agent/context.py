"""What a running job sees: its context (progress, cooperative stop) and the errors it raises."""

from __future__ import annotations

from typing import Protocol


class JobFailed(Exception):  # noqa: N818 - a job outcome, not a programming error
    """Raise it from a job to end the job FAILED with this message, shown to callers verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobStopped(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside a job by `sleep` and `check_stop` when it is asked to stop (cancel,
    deadline, shutdown). Let it propagate: the job then ends CANCELLED or FAILED as asked."""


class JobContext(Protocol):
    """How a running job talks to its agent: the second parameter of a job function."""

    @property
    def job_id(self) -> str:
        """The job's id, as submit answered it."""

    @property
    def session_id(self) -> str:
        """The AgentCore session the job runs in."""

    def progress(self, percent: float, message: str) -> None:
        """Publish progress (0 to 100, and a short message); cheap enough to call per step."""

    def sleep(self, seconds: float) -> None:
        """Wait, but raise JobStopped at once when the job is asked to stop."""

    def check_stop(self) -> None:
        """Raise JobStopped when the job has been asked to stop. A `cpu=True` job is stopped
        by its process ending, so there this only returns."""
