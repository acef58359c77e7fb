"""An agent on the job library whose jobs try checkpoints it must refuse, in a thread and in a
child process, and report the refusal's words."""

from __future__ import annotations

from typing import Any

from agentjobs.agent import CheckpointError, JobApp, JobContext
from agentjobs.limits import MAX_CHECKPOINT_BYTES

app = JobApp()


def try_checkpoint(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Checkpoint a state too large (or not JSON, with "set": true); the error's text."""
    state: Any = {1, 2} if params.get("set") else {"blob": "x" * (MAX_CHECKPOINT_BYTES + 1)}
    try:
        ctx.checkpoint(state)
    except CheckpointError as exc:
        return {"refused": str(exc)}
    return {"refused": None}


app.job("oversized", resumable=True)(try_checkpoint)
app.job("oversized_cpu", resumable=True, cpu=True)(try_checkpoint)
app.job("not_resumable")(try_checkpoint)


if __name__ == "__main__":
    app.run()
