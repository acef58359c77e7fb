"""The `synthetic` kind: a controllable job for smoke tests and benchmarks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from agentjobs.limits import MAX_ERROR_MESSAGE_CHARS
from agentjobs.protocol import MAX_RUNTIME_S, JobKind, encode_json
from jobagent.kinds.base import (
    JobContext,
    JobFailed,
    KindSpec,
    bool_field,
    int_field,
    number_field,
    optional_text_field,
    reject_unknown,
)
from jobagent.settings import Settings

MAX_RESULT_BYTES = 50_000_000
PROGRESS_STEPS = 20


@dataclass(frozen=True)
class SyntheticInput:
    """Work `seconds` (burning CPU if `cpu`), then fail with `fail` or return ~`result_bytes`."""

    seconds: float = 1.0
    cpu: bool = False
    fail: str | None = None
    result_bytes: int = 100


def parse(job_input: dict[str, Any], settings: Settings) -> SyntheticInput:
    """Validate the synthetic input; raise ProtocolError(INVALID_INPUT) saying what is expected."""
    reject_unknown(job_input, {"seconds", "cpu", "fail", "result_bytes"}, JobKind.SYNTHETIC)
    return SyntheticInput(
        seconds=number_field(job_input, "seconds", 1.0, 0.0, MAX_RUNTIME_S),
        cpu=bool_field(job_input, "cpu", False),
        fail=optional_text_field(job_input, "fail", MAX_ERROR_MESSAGE_CHARS),
        result_bytes=int_field(job_input, "result_bytes", 100, 0, MAX_RESULT_BYTES),
    )


def run(params: SyntheticInput, context: JobContext) -> dict[str, Any]:
    """Work in PROGRESS_STEPS slices, reporting progress after each."""
    slice_s = params.seconds / PROGRESS_STEPS
    for step in range(1, PROGRESS_STEPS + 1):
        if params.cpu:
            _burn(slice_s, context)
        else:
            context.sleep(slice_s)
        context.report(100.0 * step / PROGRESS_STEPS, f"step {step} of {PROGRESS_STEPS}")
    if params.fail is not None:
        raise JobFailed(params.fail)
    return sized_result(params)


def sized_result(params: SyntheticInput) -> dict[str, Any]:
    """A result whose compact JSON is about `result_bytes` bytes (never less than its frame)."""
    result: dict[str, Any] = {"seconds": params.seconds, "cpu": params.cpu, "data": ""}
    frame = len(encode_json(result).encode())
    result["data"] = "x" * max(params.result_bytes - frame, 0)
    return result


def _burn(seconds: float, context: JobContext) -> None:
    deadline = time.monotonic() + seconds
    counter = 0
    while time.monotonic() < deadline:
        for _ in range(10_000):
            counter = (counter * 31 + 7) % 1_000_003
        context.check_stop()


SPEC = KindSpec(
    kind=JobKind.SYNTHETIC,
    parse=parse,
    run=run,
    in_child=lambda params: bool(params.cpu),
)
