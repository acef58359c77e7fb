"""The synthetic job's durable side: where it resumes, what it checkpoints, when it fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from agentjobs.agent import JobStopped
from agentjobs.limits import MAX_ATTEMPTS
from agentjobs.protocol import ErrorCode, ProtocolError
from builtin_jobs import synthetic
from builtin_jobs.synthetic import SyntheticInput, TransientFailure, run_synthetic
from main import app


@dataclass
class Ctx:
    """A JobContext that keeps what the job did: time slept, progress, checkpoints."""

    attempt: int = 1
    resumed_state: Any = None
    stop_at_sleep: int | None = None
    """Raise JobStopped on this call of `sleep` (1 is the first)."""
    slept: float = 0.0
    sleeps: int = 0
    reports: list[float] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    job_id: str = "0" * 32
    session_id: str = "unit-session-synthetic-000000000000001"

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps == self.stop_at_sleep:
            raise JobStopped
        self.slept += seconds

    def check_stop(self) -> None:
        return None

    def progress(self, percent: float, message: str) -> None:
        self.reports.append(percent)

    def checkpoint(self, state: Any) -> None:
        self.checkpoints.append(state)


def test_synthetic_is_declared_resumable_and_retries_its_transient_failure() -> None:
    spec = app.jobs["synthetic"]
    assert spec.resumable
    assert spec.retry_on == (TransientFailure,)


def test_a_resumed_run_skips_the_work_its_checkpoint_says_was_done() -> None:
    ctx = Ctx(attempt=2, resumed_state={"elapsed_s": 0.6, "step": 12})
    result = run_synthetic(SyntheticInput(seconds=1.0), ctx)
    assert ctx.slept == pytest.approx(0.4)
    assert result["resumed_from_s"] == 0.6 and result["attempts"] == 2
    # Steps 13 to 20 remain: their progress is reported, the done ones' is not.
    assert ctx.reports == [100.0 * step / 20 for step in range(13, 21)]


def test_a_first_run_reports_every_step_and_its_result_says_so() -> None:
    ctx = Ctx()
    result = run_synthetic(SyntheticInput(seconds=2.0), ctx)
    assert ctx.slept == pytest.approx(2.0)
    assert len(ctx.reports) == synthetic.PROGRESS_STEPS
    assert result["resumed_from_s"] == 0.0 and result["attempts"] == 1
    assert ctx.checkpoints == []


def test_checkpoints_come_every_checkpoint_every_s_of_work() -> None:
    ctx = Ctx()
    run_synthetic(SyntheticInput(seconds=1.0, checkpoint_every_s=0.25), ctx)
    assert [c["elapsed_s"] for c in ctx.checkpoints] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert [c["step"] for c in ctx.checkpoints] == [5, 10, 15, 20]
    assert ctx.slept == pytest.approx(1.0)


def test_checkpoints_finer_than_a_step_split_the_step() -> None:
    ctx = Ctx()
    run_synthetic(SyntheticInput(seconds=2.0, checkpoint_every_s=0.04), ctx)
    assert len(ctx.checkpoints) == 50
    assert len(ctx.reports) == synthetic.PROGRESS_STEPS
    assert ctx.slept == pytest.approx(2.0)


def test_a_stopped_run_stores_a_last_checkpoint_and_stops() -> None:
    ctx = Ctx(stop_at_sleep=4)
    with pytest.raises(JobStopped):
        run_synthetic(SyntheticInput(seconds=1.0, checkpoint_every_s=0.1), ctx)
    # Three chunks of 0.05 s done (steps of 1/20 s), the fourth stopped at once.
    assert ctx.checkpoints[-1]["elapsed_s"] == pytest.approx(0.15, abs=0.01)
    assert ctx.checkpoints[-1]["step"] == 3


def test_a_stopped_run_without_checkpoints_stores_none() -> None:
    ctx = Ctx(stop_at_sleep=2)
    with pytest.raises(JobStopped):
        run_synthetic(SyntheticInput(seconds=1.0), ctx)
    assert ctx.checkpoints == []


def test_fail_attempts_fails_the_first_attempts_half_way_and_not_the_next() -> None:
    first = Ctx(attempt=1)
    with pytest.raises(TransientFailure, match="attempt 1"):
        run_synthetic(SyntheticInput(seconds=1.0, fail_attempts=2), first)
    assert first.slept == pytest.approx(0.5)
    second = Ctx(attempt=2, resumed_state={"elapsed_s": 0.7, "step": 14})
    with pytest.raises(TransientFailure, match="attempt 2"):
        run_synthetic(SyntheticInput(seconds=1.0, fail_attempts=2), second)
    assert second.slept == 0.0  # resumed past half-way: it fails at once
    third = Ctx(attempt=3)
    assert run_synthetic(SyntheticInput(seconds=1.0, fail_attempts=2), third)["attempts"] == 3


@pytest.mark.parametrize(
    "state",
    [None, "12", {"elapsed_s": "0.5"}, {"elapsed_s": True}, {"elapsed_s": -3}, []],
)
def test_a_state_that_is_not_synthetic_s_own_starts_from_zero(state: Any) -> None:
    assert synthetic.resumed_elapsed(state, 5.0) == 0.0


def test_a_state_past_the_work_is_held_to_it() -> None:
    assert synthetic.resumed_elapsed({"elapsed_s": 99.0}, 5.0) == 5.0


def test_a_first_attempt_s_result_is_the_same_for_the_same_input() -> None:
    params = SyntheticInput(seconds=0.1, result_bytes=400)
    assert run_synthetic(params, Ctx()) == synthetic.sized_result(params)


@pytest.mark.parametrize(
    ("job_input", "says"),
    [
        ({"checkpoint_every_s": 0}, "'input.checkpoint_every_s'"),
        ({"checkpoint_every_s": -1.0}, "'input.checkpoint_every_s'"),
        ({"checkpoint_every_s": "1"}, "'input.checkpoint_every_s'"),
        ({"fail_attempts": -1}, "'input.fail_attempts'"),
        ({"fail_attempts": MAX_ATTEMPTS + 1}, "'input.fail_attempts'"),
        ({"fail_attempts": 1.5}, "'input.fail_attempts'"),
    ],
)
def test_bad_durability_inputs_are_refused_naming_the_field(
    job_input: dict[str, Any], says: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        app.jobs["synthetic"].parse(job_input)
    assert caught.value.code == ErrorCode.INVALID_INPUT
    assert says in caught.value.message
