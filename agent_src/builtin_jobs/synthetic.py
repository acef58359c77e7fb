"""The `synthetic` job: a controllable job for smoke tests and benchmarks."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from agentjobs.agent import CheckpointError, JobContext, JobFailed, JobStopped
from agentjobs.limits import MAX_ATTEMPTS, MAX_DURABLE_RUNTIME_S, MAX_ERROR_MESSAGE_CHARS
from agentjobs.protocol import encode_json

MAX_RESULT_BYTES = 50_000_000
PROGRESS_STEPS = 20

FailMessage = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ERROR_MESSAGE_CHARS)]


class TransientFailure(Exception):  # noqa: N818 - named for what it stands for
    """The failure `fail_attempts` asks for; synthetic declares it in `retry_on`, so each one
    is retried in place (attempts permitting)."""


class SyntheticInput(BaseModel):
    """Work `seconds` (burning CPU if `cpu`), then fail with `fail` or return ~`result_bytes`.
    `checkpoint_every_s` stores the work done that often (a resumed attempt skips it);
    `fail_attempts` makes each of the first N attempts fail half-way with TransientFailure."""

    # Strict: a caller's "2" or 1 is not silently read as a number or a boolean.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    seconds: float = Field(default=1.0, ge=0.0, le=MAX_DURABLE_RUNTIME_S, allow_inf_nan=False)
    cpu: bool = False
    fail: FailMessage | None = None
    result_bytes: int = Field(default=100, ge=0, le=MAX_RESULT_BYTES)
    checkpoint_every_s: float | None = Field(
        default=None, gt=0.0, le=MAX_DURABLE_RUNTIME_S, allow_inf_nan=False
    )
    fail_attempts: int = Field(default=0, ge=0, le=MAX_ATTEMPTS)

    @field_validator("fail")
    @classmethod
    def _fail_has_text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be null or a message with some text in it")
        return value


def burns_cpu(params: SyntheticInput) -> bool:
    """A `cpu` run belongs in a child process, so that /ping stays quick."""
    return params.cpu


def run_synthetic(params: SyntheticInput, ctx: JobContext) -> dict[str, Any]:
    """Work in PROGRESS_STEPS slices, reporting progress after each; continue from the
    checkpointed elapsed work of an earlier attempt."""
    work = _Work(params, ctx)
    try:
        work.run()
    except JobStopped:
        if params.checkpoint_every_s is not None:
            # The last checkpoint is a bonus: one that cannot be stored leaves the earlier one.
            with contextlib.suppress(CheckpointError):
                work.checkpoint()
        raise
    if params.fail is not None:
        raise JobFailed(params.fail)
    return sized_result(params, resumed_from_s=work.resumed_from_s, attempts=ctx.attempt)


def resumed_elapsed(state: Any, seconds: float) -> float:
    """The seconds of work a checkpoint state says were done, within 0..seconds; 0 for a state
    that is not synthetic's own."""
    if not isinstance(state, dict):
        return 0.0
    elapsed = state.get("elapsed_s")
    if isinstance(elapsed, bool) or not isinstance(elapsed, int | float):
        return 0.0
    if not math.isfinite(elapsed):
        return 0.0
    return min(max(float(elapsed), 0.0), seconds)


class _Work:
    """One attempt's run through the job's seconds of work, in chunks that end at each progress
    step, each checkpoint and the failure point."""

    def __init__(self, params: SyntheticInput, ctx: JobContext) -> None:
        self._params = params
        self._ctx = ctx
        self.resumed_from_s = resumed_elapsed(ctx.resumed_state, params.seconds)
        self.elapsed_s = self.resumed_from_s
        self._checkpointed_s = self.elapsed_s
        self._fail_at = params.seconds / 2 if ctx.attempt <= params.fail_attempts else None

    def run(self) -> None:
        seconds = self._params.seconds
        done = _steps_done(self.elapsed_s, seconds)
        for step in range(done + 1, PROGRESS_STEPS + 1):
            boundary = seconds * step / PROGRESS_STEPS
            self._fail_if_due()
            while self.elapsed_s < boundary - 1e-12:
                self._advance(self._next_stop(boundary))
                self._fail_if_due()
                self._checkpoint_if_due()
            self._ctx.progress(100.0 * step / PROGRESS_STEPS, f"step {step} of {PROGRESS_STEPS}")

    def checkpoint(self) -> None:
        """Store the work done so far."""
        steps = _steps_done(self.elapsed_s, self._params.seconds)
        self._ctx.checkpoint({"elapsed_s": self.elapsed_s, "step": steps})
        self._checkpointed_s = self.elapsed_s

    def _next_stop(self, boundary: float) -> float:
        stop = boundary
        every = self._params.checkpoint_every_s
        if every is not None:
            stop = min(stop, self._checkpointed_s + every)
        if self._fail_at is not None and self.elapsed_s < self._fail_at:
            stop = min(stop, self._fail_at)
        return max(stop, self.elapsed_s)

    def _advance(self, until_s: float) -> None:
        chunk = until_s - self.elapsed_s
        started = time.monotonic()
        try:
            if self._params.cpu:
                _burn(chunk, self._ctx)
            else:
                self._ctx.sleep(chunk)
        except JobStopped:
            # The part of the chunk done before the stop counts for the last checkpoint.
            self.elapsed_s += min(max(time.monotonic() - started, 0.0), chunk)
            raise
        self.elapsed_s = until_s

    def _fail_if_due(self) -> None:
        if self._fail_at is not None and self.elapsed_s >= self._fail_at:
            self._fail_at = None
            raise TransientFailure(
                f"synthetic transient failure half-way through attempt {self._ctx.attempt} "
                f"(fail_attempts={self._params.fail_attempts})"
            )

    def _checkpoint_if_due(self) -> None:
        every = self._params.checkpoint_every_s
        # A hair of tolerance: sums of float chunks fall just short of their targets.
        if every is not None and self.elapsed_s >= self._checkpointed_s + every - 1e-9:
            self.checkpoint()


def _steps_done(elapsed_s: float, seconds: float) -> int:
    if seconds <= 0:
        return 0
    # A hair of tolerance: 0.1 * 20 / 2 must count as step 1 done, not 0.9999...
    return min(int(elapsed_s * PROGRESS_STEPS / seconds + 1e-9), PROGRESS_STEPS)


def sized_result(
    params: SyntheticInput, *, resumed_from_s: float = 0.0, attempts: int = 1
) -> dict[str, Any]:
    """A result whose compact JSON is about `result_bytes` bytes (never less than its frame):
    a first attempt's result is the same for the same input."""
    result: dict[str, Any] = {
        "seconds": params.seconds,
        "cpu": params.cpu,
        "resumed_from_s": resumed_from_s,
        "attempts": attempts,
        "data": "",
    }
    frame = len(encode_json(result).encode())
    result["data"] = "x" * max(params.result_bytes - frame, 0)
    return result


def _burn(seconds: float, ctx: JobContext) -> None:
    deadline = time.monotonic() + seconds
    counter = 0
    while time.monotonic() < deadline:
        for _ in range(10_000):
            counter = (counter * 31 + 7) % 1_000_003
        ctx.check_stop()
