"""Durable jobs: from a session's loss to the job running again in a fresh one, and what
one `ctx.checkpoint` costs, on the local stack.

(a) A resumable synthetic job checkpointing every 0.2 s loses its session mid-run, by
StopRuntimeSession (the agent's shutdown sends the fast-path signal) or by SIGKILL of its
agent (no signal: only a scheduled tick finds it), on a stack with the fast path and on one
driven by the schedule alone, both with the same poller period. Three moments are taken
after the loss: the record names a fresh session (the poller's resume write), the fresh
session answered `resume` RUNNING (`resume_pending` cleared), and the job's progress moves
again (a checkpoint written from the fresh session). Runs follow one another, so the
losses fall at different phases of the schedule.

(b) A job (`checkpoint_timing`, served by this file with `--agent` next to the project's
own jobs) calls `ctx.checkpoint` N times with a state of a given size and returns each
call's duration: the checkpoint's own cost, a consistent GetItem (its fencing read) and an
S3 PutObject on the local stack's moto server.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import BaseModel, ConfigDict, Field

from agentjobs.agent import JobContext
from bench.common import percentile, print_table

PERIOD_S = float(os.environ.get("BENCH_RESUME_PERIOD_S", "20"))
RUNS = int(os.environ.get("BENCH_RESUME_RUNS", "5"))
CHECKPOINTS = int(os.environ.get("BENCH_CHECKPOINTS", "200"))
CHECKPOINT_EVERY_S = 0.2
JOB_S = 600.0
"""Far longer than a measurement: each job is cancelled once it runs again."""
STATE_SIZES = (100, 100_000)
AGENT_FLAG = "--agent"


class TimingInput(BaseModel):
    """How many checkpoints to take, and how big each one's state is."""

    model_config = ConfigDict(extra="forbid", strict=True)

    checkpoints: int = Field(default=100, ge=1, le=10_000)
    state_bytes: int = Field(default=100, ge=0, le=500_000)


def checkpoint_timing(params: TimingInput, ctx: JobContext) -> dict[str, Any]:
    """Checkpoint `checkpoints` times; each call's duration in seconds."""
    timings = []
    for step in range(params.checkpoints):
        started = time.perf_counter()
        ctx.checkpoint({"step": step, "pad": "x" * params.state_bytes})
        timings.append(time.perf_counter() - started)
    return {"timings_s": timings}


def serve_agent() -> None:
    """The project's agent, plus `checkpoint_timing`: run by the local runtime per session."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent_src"))
    from main import app  # noqa: PLC0415

    app.job("checkpoint_timing", resumable=True)(checkpoint_timing)
    app.run()


# (a) loss to running again


def _record(stack: Any, job_id: str) -> dict[str, Any]:
    item: dict[str, Any] = stack.client("dynamodb").get_item(
        TableName=stack.values()["JOBS_TABLE"], Key={"job_id": {"S": job_id}}, ConsistentRead=True
    )["Item"]
    return item


def _checkpoint_session(stack: Any, job_id: str) -> str | None:
    try:
        body = stack.client("s3").get_object(
            Bucket=stack.values()["RESULTS_BUCKET"], Key=f"jobs/{job_id}/checkpoint.json"
        )["Body"]
    except Exception:  # not written yet
        return None
    session = json.loads(body.read()).get("session_id")
    return str(session) if session else None


def _lose(stack: Any, session_id: str, how: str) -> None:
    if how == "stop":
        stack.client("bedrock-agentcore").stop_runtime_session(
            agentRuntimeArn=stack.values()["AGENT_RUNTIME_ARN"], runtimeSessionId=session_id
        )
        return
    from testbed.local_runtime import session_processes  # noqa: PLC0415

    values = stack.values()
    runtime_url, runtime_pid = values["LOCAL_RUNTIME_URL"], int(values["LOCAL_RUNTIME_PID"])
    for process in session_processes(runtime_url, runtime_pid, session_id):
        with contextlib.suppress(ProcessLookupError):  # gone already
            os.kill(process.pid, signal.SIGKILL)


def _one_loss(stack: Any, how: str, rng: random.Random) -> tuple[float, float, float] | None:
    """Seconds from the loss to: fresh session assigned, it answered, progress moved."""
    session_id = f"bench-resume-{uuid.uuid4()}"
    job_id = stack.submit(
        stack.client("bedrock-agentcore"),
        session_id,
        kind="synthetic",
        input={"seconds": JOB_S, "checkpoint_every_s": CHECKPOINT_EVERY_S},
        max_attempts=2,
    )
    deadline = time.monotonic() + 30
    while _checkpoint_session(stack, job_id) != session_id and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(rng.uniform(0.5, 2.0))
    lost_at = time.monotonic()
    _lose(stack, session_id, how)
    assigned = answered = moved = None
    deadline = lost_at + 3 * PERIOD_S + 30
    fresh = None
    while moved is None and time.monotonic() < deadline:
        item = _record(stack, job_id)
        now = time.monotonic()
        fresh = item.get("run_session_id", {}).get("S")
        if fresh and fresh != session_id:
            assigned = assigned or now
            if not item.get("resume_pending", {}).get("BOOL", False):
                answered = answered or now
            if _checkpoint_session(stack, job_id) == fresh:
                moved = now
        time.sleep(0.05)
    if fresh and fresh != session_id:
        stack.invoke(fresh, {"action": "cancel", "job_id": job_id})
    if assigned is None or answered is None or moved is None:
        return None
    return assigned - lost_at, answered - lost_at, moved - lost_at


def _loss_rows(name: str, stack: Any, how: str, rng: random.Random) -> list[object]:
    samples = [s for s in (_one_loss(stack, how, rng) for _ in range(RUNS)) if s is not None]
    if not samples:
        return [name, RUNS, 0, "-", "-", "-", "-", "-", "-"]
    cells: list[object] = [name, RUNS, len(samples)]
    for column in range(3):
        values = [s[column] for s in samples]
        cells += [percentile(values, 50), max(values)]
    return cells


# (b) the cost of a checkpoint


def _checkpoint_rows(stack: Any) -> list[list[object]]:
    rows: list[list[object]] = []
    for size in STATE_SIZES:
        session_id = f"bench-checkpoint-{uuid.uuid4()}"
        job_id = stack.submit(
            stack.client("bedrock-agentcore"),
            session_id,
            kind="checkpoint_timing",
            input={"checkpoints": CHECKPOINTS, "state_bytes": size},
        )
        deadline = time.monotonic() + 300
        answer: dict[str, Any] = {}
        while time.monotonic() < deadline:
            answer = stack.invoke(session_id, {"action": "result", "job_id": job_id})
            if answer.get("status") != "RUNNING":
                break
            time.sleep(0.5)
        timings = (answer.get("result") or {}).get("timings_s") or []
        if answer.get("status") != "SUCCEEDED" or not timings:
            rows.append([size, CHECKPOINTS, f"job ended {answer.get('status')}", "-", "-"])
            continue
        ms = [t * 1000 for t in timings]
        rows.append([size, len(ms), percentile(ms, 50), percentile(ms, 99), max(ms)])
    return rows


def main() -> None:
    from testbed.local_stack import local_stack  # noqa: PLC0415

    agent = f"{sys.executable} {Path(__file__).resolve()} {AGENT_FLAG}"
    rng = random.Random(15)
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp:
        with local_stack(
            Path(tmp) / "fast", poller_interval_s=PERIOD_S, fastpath=True, AGENTCORE_AGENT_CMD=agent
        ) as fast:
            rows = [
                _loss_rows("StopRuntimeSession, fast path on", fast, "stop", rng),
                _loss_rows("SIGKILL of the agent, fast path on", fast, "sigkill", rng),
            ]
            checkpoint_rows = _checkpoint_rows(fast)
        with local_stack(
            Path(tmp) / "sched",
            poller_interval_s=PERIOD_S,
            fastpath=False,
            AGENTCORE_AGENT_CMD=agent,
        ) as sched:
            rows.append(_loss_rows("StopRuntimeSession, schedule alone", sched, "stop", rng))
    print_table(
        f"Session loss to the job running again in a fresh session, poller period {PERIOD_S:g} s "
        f"(goal: under one period with the fast path)",
        [
            "loss",
            "runs",
            "measured",
            "p50 s to fresh session assigned",
            "max s",
            "p50 s to fresh session answered RUNNING",
            "max s",
            "p50 s to progress moving again",
            "max s",
        ],
        rows,
    )
    print_table(
        f"ctx.checkpoint on the local stack (moto), {CHECKPOINTS} calls per state size",
        ["state bytes", "calls", "p50 ms", "p99 ms", "max ms"],
        checkpoint_rows,
    )


if __name__ == "__main__":
    if sys.argv[1:] == [AGENT_FLAG]:
        serve_agent()
    else:
        main()
