"""Durable jobs in the agent, in process over moto's mock_aws: declarations, checkpoints (their
encoding, bounds and fencing), submit's attempts, in-place retries, resume and suspend."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import BaseModel

from agentjobs import schema
from agentjobs.agent import (
    CheckpointError,
    JobApp,
    JobContext,
    JobDeclarationError,
    JobFailed,
    JobStopped,
)
from agentjobs.agent.adapters import AgentAdapters
from agentjobs.agent.checkpoints import (
    RETRY_BASE_S,
    RETRY_MAX_S,
    encode_state,
    next_checkpoint_event_gap,
    retry_delay,
)
from agentjobs.agent.runner import JobRunner
from agentjobs.agent.settings import AgentSettings
from agentjobs.history import Event, EventLog
from agentjobs.limits import MAX_ATTEMPTS, MAX_CHECKPOINT_BYTES, MAX_EVENTS_PER_JOB
from agentjobs.protocol import Action, ErrorCode, JobQuery, ProtocolError, SubmitRequest
from agentjobs.record import request_fingerprint
from agentjobs.store import JobStore, ResultStore
from emulator.resources import LocalResources, create_resources

REGION = "us-east-1"
SESSION = "unit-session-durable-000000000000000001"
OTHER_SESSION = "unit-session-durable-000000000000000002"


class Flaky(Exception):
    """A transient error the test jobs declare in retry_on."""


class Steps(BaseModel):
    steps: int = 3
    fail_attempts: int = 0
    step_s: float = 0.0


def counting(params: Steps, ctx: JobContext) -> dict[str, Any]:
    """Counts steps, checkpointing each; continues from the last one; fails as asked."""
    state = ctx.resumed_state or {"done": 0}
    done = int(state["done"])
    started = done
    while done < params.steps:
        ctx.sleep(params.step_s)
        if ctx.attempt <= params.fail_attempts and done == params.steps // 2:
            raise Flaky(f"flaky on attempt {ctx.attempt}")
        done += 1
        ctx.progress(100.0 * done / params.steps, f"step {done}")
        ctx.checkpoint({"done": done})
    return {"done": done, "started_at_step": started, "attempt": ctx.attempt}


def waits_for_stop(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Checkpoints once, then waits to be stopped, storing a last checkpoint when it is."""
    ctx.checkpoint({"phase": "started"})
    try:
        ctx.sleep(60)
    except JobStopped:
        ctx.checkpoint({"phase": "stopped"})
        raise
    return {}


def checkpoints_twice(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Checkpoints, waits for the test's word, checkpoints again."""
    ctx.checkpoint({"n": 1})
    ctx.sleep(float(params.get("pause_s", 0.5)))
    ctx.checkpoint({"n": 2})
    return {"n": 2}


def refused_checkpoint(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Tries to checkpoint what it is given and reports the error's words."""
    try:
        ctx.checkpoint({"big": "x" * int(params["size"])} if "size" in params else {1, 2})
    except CheckpointError as exc:
        return {"refused": str(exc)}
    return {"refused": None}


def plain(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Not resumable: a checkpoint is refused."""
    try:
        ctx.checkpoint({"a": 1})
    except CheckpointError as exc:
        return {"refused": str(exc)}
    return {"refused": None}


def always_flaky(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    raise Flaky("still flaky")


def durable_app() -> JobApp:
    app = JobApp()
    app.job("counting", resumable=True, retry_on=(Flaky,))(counting)
    app.job("waits", resumable=True)(waits_for_stop)
    app.job("twice", resumable=True)(checkpoints_twice)
    app.job("refused", resumable=True)(refused_checkpoint)
    app.job("flaky", resumable=True, retry_on=(Flaky,))(always_flaky)
    app.job("plain")(plain)
    return app


@dataclass
class Tracker:
    """The async-task registry of BedrockAgentCoreApp, as the runner uses it."""

    active: set[int] = field(default_factory=set)
    next_id: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_async_task(self, name: str, metadata: dict[str, Any] | None = None) -> int:
        with self.lock:
            self.next_id += 1
            self.active.add(self.next_id)
            return self.next_id

    def complete_async_task(self, task_id: int) -> bool:
        with self.lock:
            self.active.discard(task_id)
        return True


@dataclass
class World:
    resources: LocalResources
    events_table: str
    runners: list[JobRunner] = field(default_factory=list)

    def runner(self, app: JobApp | None = None, **settings: Any) -> JobRunner:
        config = AgentSettings(
            jobs_table=self.resources.table,
            results_bucket=self.resources.bucket,
            events_table=self.events_table,
            **settings,
        )
        job_app = app or durable_app()
        runner = JobRunner(config, AgentAdapters(config), Tracker(), job_app.jobs)
        self.runners.append(runner)
        return runner

    @property
    def jobs(self) -> JobStore:
        return JobStore(boto3.client("dynamodb"), self.resources.table)

    @property
    def results(self) -> ResultStore:
        return ResultStore(boto3.client("s3"), self.resources.bucket)

    def checkpoint(self, job_id: str) -> dict[str, Any]:
        stored = self.results.get_checkpoint(job_id)
        assert stored is not None, f"job {job_id} has no checkpoint"
        return stored

    def outcome(self, job_id: str) -> dict[str, Any]:
        stored = self.results.get_outcome(job_id)
        assert stored is not None, f"job {job_id} has no outcome"
        return stored

    def stored_input(self, job_id: str) -> dict[str, Any]:
        stored = self.results.get_input(job_id)
        assert stored is not None, f"job {job_id} has no stored input"
        return stored

    def events(self, job_id: str) -> list[Event]:
        return EventLog(boto3.client("dynamodb"), self.events_table).list(job_id)

    def give_session(self, job_id: str, session_id: str, attempt: int | None = None) -> None:
        """What the poller writes when it resumes a job in a fresh session."""
        names = {"#run": "run_session_id"}
        values: dict[str, Any] = {":run": {"S": session_id}}
        update = "SET #run = :run"
        if attempt is not None:
            names["#attempt"] = "attempt"
            values[":attempt"] = {"N": str(attempt)}
            update += ", #attempt = :attempt"
        boto3.client("dynamodb").update_item(
            TableName=self.resources.table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        resources = create_resources(session, "durable")
        made = World(resources, resources.events_table)
        yield made
        for runner in made.runners:
            runner.shutdown(2.0)


def submit(runner: JobRunner, kind: str, job_input: dict[str, Any], **fields: Any) -> str:
    answer = runner.submit(SubmitRequest(kind=kind, input=job_input, **fields), SESSION, None)
    return str(answer["job_id"])


def wait_for_end(
    runner: JobRunner, job_id: str, session_id: str = SESSION, timeout_s: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = runner.answer(JobQuery(Action.RESULT, job_id), session_id)
        if answer["status"] != "RUNNING":
            return answer
        time.sleep(0.02)
    raise TimeoutError(f"job {job_id} did not end")


def wait_until(check: Any, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise TimeoutError("the condition never held")


def refusal(call: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        call()
    return caught.value


# -- declarations -------------------------------------------------------------------------


def test_resumable_and_retry_on_are_declared_on_the_job() -> None:
    app = durable_app()
    assert app.jobs["counting"].resumable
    assert app.jobs["counting"].retry_on == (Flaky,)
    assert not app.jobs["plain"].resumable
    assert app.jobs["plain"].retry_on == ()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"resumable": "yes"}, "resumable must be True or False"),
        ({"resumable": True, "retry_on": Flaky}, "write retry_on=(Flaky,)"),
        ({"resumable": True, "retry_on": [Flaky]}, "a tuple of exception classes"),
        ({"resumable": True, "retry_on": ("Flaky",)}, "'Flaky' in it"),
        ({"resumable": True, "retry_on": (KeyboardInterrupt,)}, "exception classes"),
        ({"resumable": True, "retry_on": (JobFailed,)}, "may not hold JobFailed"),
        ({"resumable": True, "retry_on": (JobStopped,)}, "may not hold JobStopped"),
        ({"retry_on": (Flaky,)}, "retry_on needs resumable=True"),
    ],
)
def test_a_bad_durability_declaration_is_refused_naming_the_function(
    options: dict[str, Any], says: str
) -> None:
    with pytest.raises(JobDeclarationError) as caught:
        JobApp().job("x", **options)(always_flaky)
    assert says in str(caught.value)
    assert "always_flaky" in str(caught.value)


def test_a_broad_retry_on_is_accepted_since_job_failed_is_caught_first() -> None:
    app = JobApp()
    app.job("broad", resumable=True, retry_on=(Exception,))(always_flaky)
    assert app.jobs["broad"].retry_on == (Exception,)


# -- checkpoint encoding and bounds -------------------------------------------------------


def test_a_state_is_encoded_as_compact_json() -> None:
    assert encode_state({"b": [1, 2.5, None], "a": "é"}) == '{"b":[1,2.5,null],"a":"é"}'


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ({1, 2}, "it holds a set"),
        ({"when": object()}, "it holds a object"),
        ({"x": float("nan")}, "NaN or infinity"),
        ({(1, 2): "tuple key"}, "tuple as a key"),
    ],
)
def test_a_state_json_cannot_carry_is_refused_naming_its_type(state: Any, says: str) -> None:
    with pytest.raises(CheckpointError) as caught:
        encode_state(state)
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_state_too_large_is_refused_with_its_size_and_the_limit() -> None:
    state = {"big": "x" * MAX_CHECKPOINT_BYTES}
    with pytest.raises(CheckpointError) as caught:
        encode_state(state)
    size = len(json.dumps(state, separators=(",", ":")))
    assert f"{size} bytes" in str(caught.value)
    assert str(MAX_CHECKPOINT_BYTES) in str(caught.value)
    encode_state({"big": "x" * (MAX_CHECKPOINT_BYTES - 20)})


def test_a_job_sees_its_refused_checkpoint_and_nothing_is_stored(world: World) -> None:
    runner = world.runner()
    too_big = submit(runner, "refused", {"size": MAX_CHECKPOINT_BYTES + 1})
    not_json = submit(runner, "refused", {})
    big = wait_for_end(runner, too_big)["result"]["refused"]
    assert "bytes as JSON" in big and str(MAX_CHECKPOINT_BYTES) in big
    assert "it holds a set" in wait_for_end(runner, not_json)["result"]["refused"]
    assert world.results.get_checkpoint(too_big) is None
    assert world.results.get_checkpoint(not_json) is None


def test_a_job_not_declared_resumable_is_told_to_declare_it(world: World) -> None:
    runner = world.runner()
    job_id = submit(runner, "plain", {})
    refused = wait_for_end(runner, job_id)["result"]["refused"]
    assert "resumable=True" in refused and "'plain'" in refused
    assert world.results.get_checkpoint(job_id) is None


# -- checkpoints, fencing -----------------------------------------------------------------


def test_a_checkpoint_is_in_s3_with_its_attempt_and_session_and_the_answer_says_when(
    world: World,
) -> None:
    runner = world.runner()
    job_id = submit(runner, "waits", {})
    stored = wait_until(lambda: world.results.get_checkpoint(job_id))
    assert stored["state"] == {"phase": "started"}
    assert stored["attempt"] == 1 and stored["session_id"] == SESSION
    status = runner.answer(JobQuery(Action.STATUS, job_id), SESSION)
    assert status["checkpoint_at"] == stored["at"]
    assert status["attempt"] == 1 and status["max_attempts"] == 1
    assert status["session_started_at"] == runner.started_at
    runner.answer(JobQuery(Action.CANCEL, job_id), SESSION)
    # Cancelled: the job stored its last checkpoint while stopping, and its outcome.
    assert world.checkpoint(job_id)["state"] == {"phase": "stopped"}
    assert world.outcome(job_id)["status"] == "CANCELLED"


def test_a_job_moved_to_another_session_is_stopped_at_its_next_checkpoint(world: World) -> None:
    runner = world.runner()
    job_id = submit(runner, "twice", {"pause_s": 1.0})
    first = wait_until(lambda: world.results.get_checkpoint(job_id))
    world.give_session(job_id, OTHER_SESSION)
    wait_until(lambda: runner.ping(SESSION)["status"] == "Healthy")
    # The second checkpoint was fenced off: the object is the first one, and no outcome of
    # this process's attempt exists to be mistaken for the job's end.
    assert world.results.get_checkpoint(job_id) == first
    assert world.results.get_outcome(job_id) is None


# -- submit -------------------------------------------------------------------------------


def test_more_than_one_attempt_is_refused_for_a_job_not_resumable(world: World) -> None:
    runner = world.runner()
    error = refusal(lambda: submit(runner, "plain", {}, max_attempts=3))
    assert error.code == ErrorCode.INVALID_INPUT
    assert "'max_attempts' must be 1" in error.message and "got 3" in error.message
    error = refusal(lambda: submit(runner, "plain", {}, max_runtime_s=9 * 3600.0))
    assert error.code == ErrorCode.INVALID_INPUT
    assert "28800" in error.message and "resumable=True" in error.message
    assert runner.ping(SESSION)["jobs"] == []


def test_a_resumable_submit_stores_its_input_before_a_record_with_its_attempts(
    world: World,
) -> None:
    runner = world.runner()
    job_id = submit(runner, "counting", {"steps": 2}, max_attempts=3, max_runtime_s=20 * 3600.0)
    stored_input = world.results.get_input(job_id)
    assert stored_input == {
        "job_id": job_id,
        "kind": "counting",
        "input": {"steps": 2},
        "max_runtime_s": 20 * 3600.0,
    }
    record = world.jobs.get(job_id)
    assert record is not None
    assert (record.resumable, record.attempt, record.max_attempts) == (True, 1, 3)
    wait_for_end(runner, job_id)
    submitted = wait_until(lambda: [e for e in world.events(job_id) if e.type == "submitted"])
    assert submitted[0].detail == {"kind": "counting", "max_attempts": 3}
    assert submitted[0].attempt == 1 and submitted[0].session_id == SESSION


def test_a_retried_submit_with_other_max_attempts_is_a_mismatch(world: World) -> None:
    runner = world.runner()
    first = submit(runner, "counting", {}, client_token="tok-1", max_attempts=2)
    assert submit(runner, "counting", {}, client_token="tok-1", max_attempts=2) == first
    error = refusal(lambda: submit(runner, "counting", {}, client_token="tok-1", max_attempts=3))
    assert error.code == ErrorCode.IDEMPOTENCY_MISMATCH and "max_attempts" in error.message
    # From a fresh process, which must read the record before touching the input.
    fresh = world.runner()
    error = refusal(
        lambda: fresh.submit(
            SubmitRequest(kind="counting", input={"steps": 9}, client_token="tok-1"), SESSION, None
        )
    )
    assert error.code == ErrorCode.IDEMPOTENCY_MISMATCH
    assert world.stored_input(first)["input"] == {}


def test_the_fingerprint_of_a_request_with_one_attempt_is_unchanged() -> None:
    canonical = b'{"input":{"seconds":1},"kind":"synthetic","max_runtime_s":60.0}'
    before = hashlib.sha256(canonical).hexdigest()
    assert request_fingerprint("synthetic", {"seconds": 1}, 60.0) == before
    assert request_fingerprint("synthetic", {"seconds": 1}, 60.0, 1) == before
    assert request_fingerprint("synthetic", {"seconds": 1}, 60.0, 2) != before


# -- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(1, 12))
def test_the_backoff_doubles_within_its_bounds_and_jitter(attempt: int) -> None:
    ceiling = min(RETRY_BASE_S * 2 ** (attempt - 1), RETRY_MAX_S)
    assert retry_delay(attempt, lambda: 0.0) == pytest.approx(ceiling / 2)
    assert retry_delay(attempt, lambda: 1.0) == pytest.approx(ceiling)
    assert ceiling / 2 <= retry_delay(attempt) <= ceiling


def test_a_declared_transient_error_is_retried_from_the_last_checkpoint(world: World) -> None:
    runner = world.runner()
    job_id = submit(runner, "counting", {"steps": 4, "fail_attempts": 1}, max_attempts=2)
    answer = wait_for_end(runner, job_id)
    assert answer["status"] == "SUCCEEDED"
    # Failed after step 2 on attempt 1; attempt 2 started from that checkpoint.
    assert answer["result"] == {"done": 4, "started_at_step": 2, "attempt": 2}
    assert answer["attempt"] == 2
    assert world.outcome(job_id)["attempt"] == 2
    assert world.checkpoint(job_id)["attempt"] == 2
    retried = wait_until(lambda: [e for e in world.events(job_id) if e.type == "retried"])
    assert retried[0].attempt == 2
    assert retried[0].detail["error_type"] == "Flaky"
    assert retried[0].detail["message"] == "flaky on attempt 1"


def test_with_no_attempt_left_a_transient_error_fails_the_job_with_its_message(
    world: World,
) -> None:
    runner = world.runner()
    once = submit(runner, "flaky", {})
    twice = submit(runner, "flaky", {}, max_attempts=2)
    assert wait_for_end(runner, once)["error"] == {"code": "JOB_FAILED", "message": "still flaky"}
    ended = wait_for_end(runner, twice)
    assert ended["error"] == {"code": "JOB_FAILED", "message": "still flaky"}
    assert ended["attempt"] == 2


# -- progress milestones ------------------------------------------------------------------


def test_progress_milestones_are_kept_once_per_tenth(world: World) -> None:
    runner = world.runner()
    job_id = submit(runner, "counting", {"steps": 40})
    wait_for_end(runner, job_id)
    progress = wait_until(
        lambda: (
            (found := [e for e in world.events(job_id) if e.type == "progress"])
            and len(found) == 10
            and found
        )
    )
    assert [e.detail["percent"] for e in progress] == [10.0 * n for n in range(1, 11)]
    # One checkpoint event: the first; the next is a minute away.
    assert [e.type for e in world.events(job_id)].count("checkpointed") == 1


def test_checkpoint_events_thin_out_so_a_72_hour_job_keeps_its_history_bounded() -> None:
    assert [next_checkpoint_event_gap(n) for n in range(1, 5)] == [60.0, 120.0, 240.0, 480.0]
    assert next_checkpoint_event_gap(50) == 3600.0
    at, noted = 0.0, 1
    while at + next_checkpoint_event_gap(noted) <= 8 * 3600:
        at += next_checkpoint_event_gap(noted)
        noted += 1
    # Each session (a process: 9 for 72 h) and each attempt starts afresh; 10 milestones each.
    sessions = 72 // 8 + MAX_ATTEMPTS
    assert sessions * (noted + 10 + 1) + 20 <= MAX_EVENTS_PER_JOB


def test_without_a_history_table_jobs_run_and_nothing_fails(world: World) -> None:
    config = AgentSettings(jobs_table=world.resources.table, results_bucket=world.resources.bucket)
    runner = JobRunner(config, AgentAdapters(config), Tracker(), durable_app().jobs)
    world.runners.append(runner)
    job_id = submit(runner, "counting", {"steps": 2, "fail_attempts": 1}, max_attempts=2)
    assert wait_for_end(runner, job_id)["status"] == "SUCCEEDED"


# -- resume -------------------------------------------------------------------------------


def resume(runner: JobRunner, job_id: str, session_id: str = OTHER_SESSION) -> dict[str, Any]:
    return runner.resume(job_id, session_id, None)


def test_a_resume_in_the_session_the_poller_gave_continues_from_the_checkpoint(
    world: World,
) -> None:
    first = world.runner()
    job_id = submit(first, "waits", {}, max_attempts=3)
    wait_until(lambda: world.results.get_checkpoint(job_id))
    first.shutdown(5.0)
    assert world.checkpoint(job_id)["state"] == {"phase": "stopped"}
    assert world.results.get_outcome(job_id) is None
    world.give_session(job_id, OTHER_SESSION, attempt=2)
    fresh = world.runner()
    answer = resume(fresh, job_id)
    assert answer["status"] == "RUNNING" and answer["attempt"] == 2
    assert answer["job_id"] == job_id and answer["session_id"] == SESSION
    # Idempotent: a second resume answers the running job.
    again = resume(fresh, job_id)
    assert again["status"] == "RUNNING" and again["attempt"] == 2
    assert again["checkpoint_at"] >= answer.get("checkpoint_at", "")
    wait_until(lambda: world.checkpoint(job_id)["attempt"] == 2)
    assert world.checkpoint(job_id)["session_id"] == OTHER_SESSION


def test_a_resumed_job_gets_the_checkpoint_state_and_the_counted_attempt(world: World) -> None:
    first = world.runner()
    job_id = submit(first, "counting", {"steps": 6, "step_s": 0.3}, max_attempts=4)
    wait_until(lambda: (c := world.results.get_checkpoint(job_id)) and c["state"]["done"] >= 2)
    first.shutdown(5.0)
    done = world.checkpoint(job_id)["state"]["done"]
    # The record says attempt 2; the checkpoint object counted 3 (say, a retry before the loss).
    checkpoint = world.checkpoint(job_id)
    world.results.put_checkpoint({**checkpoint, "attempt": 3})
    world.give_session(job_id, OTHER_SESSION, attempt=2)
    fresh = world.runner()
    assert resume(fresh, job_id)["attempt"] == 3
    ended = wait_for_end(fresh, job_id, OTHER_SESSION)
    assert ended["result"] == {"done": 6, "started_at_step": done, "attempt": 3}


def test_a_resume_is_refused_clearly_for_an_ended_or_plain_job(world: World) -> None:
    runner = world.runner()
    plain_id = submit(runner, "plain", {})
    wait_for_end(runner, plain_id)
    error = refusal(lambda: resume(world.runner(), plain_id, SESSION))
    assert error.code == ErrorCode.NOT_RESUMABLE and plain_id in error.message
    ended_id = submit(runner, "counting", {"steps": 1})
    wait_for_end(runner, ended_id)
    record = world.jobs.get(ended_id)
    assert record is not None
    # What the poller leaves once it collected the end.
    boto3.client("dynamodb").update_item(
        TableName=world.resources.table,
        Key={"job_id": {"S": ended_id}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "SUCCEEDED"}},
    )
    error = refusal(lambda: resume(world.runner(), ended_id, SESSION))
    assert error.code == ErrorCode.JOB_ENDED
    assert error.message == f"job {ended_id} has ended (SUCCEEDED); nothing to resume"


def test_a_resume_outside_the_active_session_or_by_a_user_starts_nothing(world: World) -> None:
    first = world.runner()
    job_id = submit(first, "waits", {}, max_attempts=2)
    wait_until(lambda: world.results.get_checkpoint(job_id))
    first.shutdown(5.0)
    fresh = world.runner()
    # The poller has not given the job to OTHER_SESSION: not this session's job.
    assert resume(fresh, job_id)["error"]["code"] == "UNKNOWN_JOB"
    world.give_session(job_id, OTHER_SESSION, attempt=2)
    error = refusal(lambda: fresh.resume(job_id, OTHER_SESSION, "alice"))
    assert error.code == ErrorCode.INVALID_REQUEST and "poller" in error.message
    assert resume(fresh, "f" * 32)["error"]["code"] == "UNKNOWN_JOB"
    assert fresh.ping(OTHER_SESSION)["status"] == "Healthy"


def test_a_resume_without_its_stored_input_fails_naming_it(world: World) -> None:
    first = world.runner()
    job_id = submit(first, "waits", {}, max_attempts=2)
    wait_until(lambda: world.results.get_checkpoint(job_id))
    first.shutdown(5.0)
    boto3.client("s3").delete_object(Bucket=world.resources.bucket, Key=schema.input_key(job_id))
    world.give_session(job_id, OTHER_SESSION, attempt=2)
    error = refusal(lambda: resume(world.runner(), job_id))
    assert error.code == ErrorCode.RESUME_FAILED
    assert schema.input_key(job_id) in error.message


# -- suspend ------------------------------------------------------------------------------


def test_suspend_stops_the_job_with_a_last_checkpoint_and_no_outcome(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    runner = world.runner()
    job_id = submit(runner, "waits", {}, max_attempts=2)
    wait_until(lambda: world.results.get_checkpoint(job_id))
    with caplog.at_level(logging.INFO, logger="agentjobs"):
        answer = runner.suspend(job_id, SESSION, None)
    # The log tells a job moved on from a job that ended: no "finished FAILED" here.
    said = [r.getMessage() for r in caplog.records if job_id in r.getMessage()]
    assert f"job {job_id} stopped here (suspend); its end is not this session's" in said
    assert not [line for line in said if "finished" in line]
    checkpoint = world.checkpoint(job_id)
    assert answer == {
        "job_id": job_id,
        "status": "RUNNING",
        "suspended": True,
        "checkpoint_at": checkpoint["at"],
    }
    assert checkpoint["state"] == {"phase": "stopped"}
    assert world.results.get_outcome(job_id) is None
    # Forgotten here: later answers come from the stores.
    status = runner.answer(JobQuery(Action.STATUS, job_id), SESSION)
    assert status["status"] == "RUNNING" and status["live"] is False


def test_suspend_of_a_plain_job_is_refused_and_the_job_runs_on(world: World) -> None:
    runner = world.runner(app=_plain_waiting_app())
    job_id = submit(runner, "plain_wait", {})
    error = refusal(lambda: runner.suspend(job_id, SESSION, None))
    assert error.code == ErrorCode.NOT_RESUMABLE
    assert runner.ping(SESSION)["status"] == "HealthyBusy"
    error = refusal(lambda: runner.suspend(job_id, SESSION, "alice"))
    assert error.code == ErrorCode.INVALID_REQUEST


def plain_wait(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    ctx.sleep(60)
    return {}


def _plain_waiting_app() -> JobApp:
    app = JobApp()
    app.job("plain_wait")(plain_wait)
    return app


def test_start_job_passes_max_attempts_on(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBS_TABLE", world.resources.table)
    monkeypatch.setenv("RESULTS_BUCKET", world.resources.bucket)
    app = durable_app()
    refused = app.start_job("plain", {}, max_attempts=2, session_id=SESSION)
    assert refused["error"]["code"] == "INVALID_INPUT"
    started = app.start_job("counting", {"steps": 1}, max_attempts=2, session_id=SESSION)
    assert started["status"] == "RUNNING"
    record = world.jobs.get(started["job_id"])
    assert record is not None and record.max_attempts == 2
    world.runners.append(app._ensure_runtime().runner)


# -- the moment between a job's record and its work ----------------------------------------


def test_a_poll_between_the_record_and_the_work_is_answered_running(world: World) -> None:
    # The record is in the table (a poller can find it) before the job's work is registered
    # in the process. A poll in that moment once read as "this process does not know the job",
    # which the poller takes for a lost session. Asked right after the table took the record:
    config = AgentSettings(
        jobs_table=world.resources.table,
        results_bucket=world.resources.bucket,
        events_table=world.events_table,
    )
    adapters = AgentAdapters(config)
    runner = JobRunner(config, adapters, Tracker(), durable_app().jobs)
    world.runners.append(runner)
    seen: list[dict[str, Any]] = []
    recorded: list[str] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == world.resources.table:
            recorded.append(params["Item"]["job_id"]["S"])

    def ask(**_: Any) -> None:
        if recorded and not seen:
            seen.append(runner.answer(JobQuery(Action.STATUS, recorded[0]), SESSION))

    events = adapters.jobs().dynamodb.meta.events
    events.register("before-parameter-build.dynamodb.PutItem", remember)
    events.register("after-call.dynamodb.PutItem", ask)
    job_id = submit(runner, "counting", {"steps": 2})
    assert recorded == [job_id]
    assert seen, "no poll was made in the moment after the record was written"
    assert seen[0]["status"] == "RUNNING"
    assert seen[0].get("live") is not False
    assert wait_for_end(runner, job_id)["status"] == "SUCCEEDED"
