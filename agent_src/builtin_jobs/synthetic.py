"""The `synthetic` job: a controllable job for smoke tests and benchmarks."""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from agentjobs.agent import JobContext, JobFailed
from agentjobs.limits import MAX_ERROR_MESSAGE_CHARS
from agentjobs.protocol import MAX_RUNTIME_S, encode_json

MAX_RESULT_BYTES = 50_000_000
PROGRESS_STEPS = 20

FailMessage = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ERROR_MESSAGE_CHARS)]


class SyntheticInput(BaseModel):
    """Work `seconds` (burning CPU if `cpu`), then fail with `fail` or return ~`result_bytes`."""

    # Strict: a caller's "2" or 1 is not silently read as a number or a boolean.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    seconds: float = Field(default=1.0, ge=0.0, le=MAX_RUNTIME_S, allow_inf_nan=False)
    cpu: bool = False
    fail: FailMessage | None = None
    result_bytes: int = Field(default=100, ge=0, le=MAX_RESULT_BYTES)

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
    """Work in PROGRESS_STEPS slices, reporting progress after each."""
    slice_s = params.seconds / PROGRESS_STEPS
    for step in range(1, PROGRESS_STEPS + 1):
        if params.cpu:
            _burn(slice_s, ctx)
        else:
            ctx.sleep(slice_s)
        ctx.progress(100.0 * step / PROGRESS_STEPS, f"step {step} of {PROGRESS_STEPS}")
    if params.fail is not None:
        raise JobFailed(params.fail)
    return sized_result(params)


def sized_result(params: SyntheticInput) -> dict[str, Any]:
    """A result whose compact JSON is about `result_bytes` bytes (never less than its frame)."""
    result: dict[str, Any] = {"seconds": params.seconds, "cpu": params.cpu, "data": ""}
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
