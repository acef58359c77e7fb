"""What a running job sees: its context (progress, cooperative stop) and the errors it raises."""

from __future__ import annotations

from typing import Any, Protocol


class JobFailed(Exception):  # noqa: N818 - a job outcome, not a programming error
    """Raise it from a job to end the job FAILED with this message, shown to callers verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobStopped(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside a job by `sleep` and `check_stop` when it is asked to stop (cancel,
    deadline, shutdown, suspend), and by `checkpoint` when the job has moved to another
    session. Let it propagate (a resumable job may store a last checkpoint first): the job
    then ends CANCELLED or FAILED as asked, or resumes elsewhere."""


class CheckpointError(ValueError):
    """`ctx.checkpoint(state)` refused the state (not JSON, too large), or the job is not
    declared resumable, or the stores could not keep it. The job may catch it and go on."""


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
        by SIGTERM, which raises JobStopped wherever it is, so there this only returns."""

    @property
    def attempt(self) -> int:
        """Which try of the job this is: 1, then one more per lost session or retried error."""

    @property
    def resumed_state(self) -> Any:
        """The state of the job's last checkpoint, to continue from; None on a first attempt
        or when it never stored one."""

    def checkpoint(self, state: Any) -> None:
        """Store `state` (JSON, at most MAX_CHECKPOINT_BYTES encoded) durably before returning,
        for a resumed attempt's `resumed_state`. Raises CheckpointError for a state it cannot
        keep or a job not declared `resumable=True`, and JobStopped when the job has moved to
        another session. Works while the job is stopping: catch JobStopped, checkpoint,
        re-raise."""
