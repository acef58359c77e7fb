"""Durable jobs in the real agent under the local runtime, AWS on moto: checkpoints, a last one
when the session is stopped, a resume in a fresh session, in-place retries, clear refusals."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from agentjobs.history import Event, EventLog
from agentjobs.limits import MAX_ATTEMPTS, MAX_CHECKPOINT_BYTES
from agentjobs.store import ResultStore
from emulator.ports import free_port
from emulator.resources import LocalResources
from testbed.agent import AgentClient, agent_env
from testbed.aws import MotoEndpoint
from testbed.local_runtime import (
    RUNTIME_ARN,
    RuntimeProcess,
    job_processes,
    local_runtime,
    new_session_id,
)
from testbed.processes import REPO, VENV_BIN, running

GIVE_UP_S = 60.0


@pytest.fixture(scope="module")
def world(moto: MotoEndpoint) -> tuple[LocalResources, str]:
    """A table, bucket and queues for this module's jobs, and a history table."""
    resources = moto.create_resources()
    return resources, resources.events_table


@pytest.fixture(scope="module")
def env(moto: MotoEndpoint, world: tuple[LocalResources, str]) -> dict[str, str]:
    resources, events_table = world
    return agent_env(
        moto,
        resources,
        EVENTS_TABLE=events_table,
        COMPLETION_QUEUE_URL=resources.completion_queue_url,
    )


@pytest.fixture(scope="module")
def runtime(env: dict[str, str]) -> Iterator[RuntimeProcess]:
    # Past the agent's own 5 s shutdown grace, so that a stop lets it store a last checkpoint.
    with local_runtime(agent_cmd_line="python agent_src/main.py", env=env, stop_grace_s=10) as rt:
        yield rt


@pytest.fixture
def resources(world: tuple[LocalResources, str]) -> LocalResources:
    return world[0]


@pytest.fixture
def results(moto: MotoEndpoint, resources: LocalResources) -> ResultStore:
    return ResultStore(moto.client("s3"), resources.bucket)


def submit(
    runtime: RuntimeProcess, session_id: str, job_input: dict[str, Any], **fields: Any
) -> Any:
    return runtime.invoke(
        session_id, {"action": "submit", "kind": "synthetic", "input": job_input, **fields}
    )


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = GIVE_UP_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not happen within {timeout_s} s")


def wait_for_end(runtime: RuntimeProcess, session_id: str, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        answer = runtime.invoke(session_id, {"action": "result", "job_id": job_id})
        return answer if answer["status"] != "RUNNING" else None

    found: dict[str, Any] = wait_for(ended, f"the end of job {job_id}")
    return found


def events_of(moto: MotoEndpoint, events_table: str, job_id: str) -> list[Event]:
    return EventLog(moto.client("dynamodb"), events_table).list(job_id)


def give_session(
    moto: MotoEndpoint, resources: LocalResources, job_id: str, session_id: str, attempt: int
) -> None:
    """What the poller writes when it resumes a job in a fresh session."""
    moto.client("dynamodb").update_item(
        TableName=resources.table,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET run_session_id = :run, attempt = :attempt",
        ExpressionAttributeValues={":run": {"S": session_id}, ":attempt": {"N": str(attempt)}},
    )


def set_status(moto: MotoEndpoint, resources: LocalResources, job_id: str, status: str) -> None:
    moto.client("dynamodb").update_item(
        TableName=resources.table,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}},
    )


def signals(moto: MotoEndpoint, resources: LocalResources) -> list[dict[str, Any]]:
    """The completion signals waiting in the fast path's queue (taken off it)."""
    sqs = moto.client("sqs")
    found = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=resources.completion_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(
                QueueUrl=resources.completion_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


def test_a_resumable_job_checkpoints_as_it_works_and_its_answers_say_so(
    runtime: RuntimeProcess,
    moto: MotoEndpoint,
    world: tuple[LocalResources, str],
    results: ResultStore,
) -> None:
    events_table = world[1]
    session = new_session_id()
    job = submit(runtime, session, {"seconds": 2, "checkpoint_every_s": 0.25}, max_attempts=2)
    job_id = job["job_id"]
    first = wait_for(lambda: results.get_checkpoint(job_id), "a first checkpoint")
    assert first["state"]["elapsed_s"] > 0 and first["attempt"] == 1
    assert first["session_id"] == session
    live = runtime.invoke(session, {"action": "status", "job_id": job_id})
    assert live["attempt"] == 1 and live["max_attempts"] == 2
    assert "checkpoint_at" in live and "session_started_at" in live
    ended = wait_for_end(runtime, session, job_id)
    assert ended["status"] == "SUCCEEDED"
    assert ended["result"]["resumed_from_s"] == 0.0 and ended["result"]["attempts"] == 1
    last = results.get_checkpoint(job_id)
    assert last is not None and last["state"] == {"elapsed_s": 2.0, "step": 20}
    assert results.get_outcome(job_id) == ended and ended["attempt"] == 1
    kinds = wait_for(
        lambda: (
            (found := [e.type for e in events_of(moto, events_table, job_id)])
            and found.count("progress") == 10
            and found
        ),
        "the job's history",
    )
    assert kinds[0] == "submitted"
    assert kinds.count("checkpointed") == 1  # the first; the next would be a minute on


@pytest.mark.parametrize("cpu", [False, True], ids=["in-process", "child-process"])
def test_a_stopped_session_keeps_a_last_checkpoint_and_a_fresh_session_resumes_from_it(
    runtime: RuntimeProcess,
    moto: MotoEndpoint,
    resources: LocalResources,
    results: ResultStore,
    cpu: bool,
) -> None:
    session = new_session_id()
    signals(moto, resources)
    # No periodic checkpoint in this run: whatever is stored is the stop's last checkpoint.
    job_input = {"seconds": 2, "cpu": cpu, "checkpoint_every_s": 1000}
    job = submit(runtime, session, job_input, max_attempts=3)
    job_id = job["job_id"]

    def under_way() -> bool:
        answer = runtime.invoke(session, {"action": "status", "job_id": job_id})
        return bool(answer["progress"]["percent"] >= 15)

    wait_for(under_way, "some progress")
    assert results.get_checkpoint(job_id) is None
    runtime.client().stop_runtime_session(agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session)
    stopped = results.get_checkpoint(job_id)
    assert stopped is not None, "the stopped job stored no last checkpoint"
    done_s = stopped["state"]["elapsed_s"]
    assert 0 < done_s < 2 and stopped["attempt"] == 1
    assert results.get_outcome(job_id) is None
    # The fast path told the poller at once (the job did not end: it is to be resumed).
    told = wait_for(lambda: signals(moto, resources), "the completion signal")
    assert [(s["job_id"], s["status"]) for s in told] == [(job_id, "RUNNING")]

    fresh = f"{new_session_id()}-r2"
    give_session(moto, resources, job_id, fresh, attempt=2)
    resumed = runtime.invoke(fresh, {"action": "resume", "job_id": job_id})
    assert resumed["status"] == "RUNNING" and resumed["attempt"] == 2
    assert resumed["job_id"] == job_id and resumed["session_id"] == session
    again = runtime.invoke(fresh, {"action": "resume", "job_id": job_id})
    assert again["status"] == "RUNNING" and again["attempt"] == 2
    ended = wait_for_end(runtime, fresh, job_id)
    assert ended["status"] == "SUCCEEDED", ended
    # It went on from the checkpoint, not from zero.
    assert ended["result"]["resumed_from_s"] == pytest.approx(done_s)
    assert ended["result"]["attempts"] == 2 and ended["attempt"] == 2
    outcome = results.get_outcome(job_id)
    assert outcome is not None and outcome["attempt"] == 2


def test_a_transient_failure_is_retried_in_place_and_the_history_shows_it(
    runtime: RuntimeProcess,
    moto: MotoEndpoint,
    world: tuple[LocalResources, str],
    results: ResultStore,
) -> None:
    events_table = world[1]
    session = new_session_id()
    retried = submit(runtime, session, {"seconds": 0.5, "fail_attempts": 1}, max_attempts=2)
    once = submit(runtime, session, {"seconds": 0.2, "fail_attempts": 1})
    ended = wait_for_end(runtime, session, retried["job_id"])
    assert ended["status"] == "SUCCEEDED", ended
    assert ended["result"]["attempts"] == 2 and ended["attempt"] == 2
    checkpoint = results.get_checkpoint(retried["job_id"])
    assert checkpoint is not None and checkpoint["attempt"] == 2 and "state" not in checkpoint
    events = wait_for(
        lambda: [
            e for e in events_of(moto, events_table, retried["job_id"]) if e.type == "retried"
        ],
        "the retried event",
    )
    assert events[0].attempt == 2 and events[0].detail["error_type"] == "TransientFailure"
    failed = wait_for_end(runtime, session, once["job_id"])
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "JOB_FAILED"
    assert "transient failure half-way through attempt 1" in failed["error"]["message"]


@pytest.fixture(scope="module")
def refusing_session() -> str:
    """One session for every refused submit: a refusal starts nothing, so each one finds the
    session's job list still empty (and a fresh agent process per refusal would test nothing
    more)."""
    return new_session_id()


@pytest.mark.parametrize(
    ("fields", "kind", "says"),
    [
        ({"max_attempts": 0}, "synthetic", f"from 1 to {MAX_ATTEMPTS}"),
        ({"max_attempts": MAX_ATTEMPTS + 1}, "synthetic", f"got {MAX_ATTEMPTS + 1}"),
        ({"max_attempts": True}, "synthetic", "got a boolean"),
        ({"max_attempts": "2"}, "synthetic", 'got "2"'),
        ({"max_attempts": 1.5}, "synthetic", "got 1.5"),
        ({"max_attempts": 2}, "data_report", "not declared resumable"),
        ({"max_runtime_s": 9 * 3600}, "data_report", "28800"),
    ],
)
def test_bad_durability_fields_are_refused_and_start_nothing(
    runtime: RuntimeProcess, refusing_session: str, fields: dict[str, Any], kind: str, says: str
) -> None:
    session = refusing_session
    answer = runtime.invoke(
        session,
        {"action": "submit", "kind": kind, "input": {"csv": "a\n1\n"}, **fields}
        if kind == "data_report"
        else {"action": "submit", "kind": kind, "input": {"seconds": 0.1}, **fields},
    )
    assert set(answer) == {"error"}, answer
    assert answer["error"]["code"] == "INVALID_INPUT"
    assert says in answer["error"]["message"]
    assert runtime.invoke(session, {"method": "ping"})["jobs"] == []


def test_a_resume_of_a_job_not_resumable_or_ended_is_refused_clearly(
    runtime: RuntimeProcess, moto: MotoEndpoint, resources: LocalResources
) -> None:
    session = new_session_id()
    report = runtime.invoke(
        session, {"action": "submit", "kind": "data_report", "input": {"csv": "a,b\n1,2\n"}}
    )
    wait_for_end(runtime, session, report["job_id"])
    refused = runtime.invoke(session, {"action": "resume", "job_id": report["job_id"]})
    assert refused["error"]["code"] == "NOT_RESUMABLE"
    assert report["job_id"] in refused["error"]["message"]
    assert "status" not in refused

    job = submit(runtime, session, {"seconds": 0.1})
    wait_for_end(runtime, session, job["job_id"])
    set_status(moto, resources, job["job_id"], "SUCCEEDED")  # as the poller records the end
    # A fresh process in the session, which knows the job from the stores alone.
    runtime.client().stop_runtime_session(agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session)
    ended = runtime.invoke(new_session_id(), {"action": "resume", "job_id": job["job_id"]})
    # Not this session's job: nothing to tell, nothing started.
    assert ended["error"]["code"] == "UNKNOWN_JOB"
    ended = runtime.invoke(session, {"action": "resume", "job_id": job["job_id"]})
    assert ended["error"] == {
        "code": "JOB_ENDED",
        "message": f"job {job['job_id']} has ended (SUCCEEDED); nothing to resume",
    }
    missing = runtime.invoke(session, {"action": "resume"})
    assert missing["error"]["code"] == "INVALID_REQUEST"
    assert "job_id" in missing["error"]["message"]


@contextmanager
def checkpoint_agent(env: dict[str, str]) -> Iterator[AgentClient]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        [str(VENV_BIN / "python"), str(REPO / "tests" / "agents" / "checkpoint_agent.py")],
        ready_url=f"{url}/ping",
        env={**env, "PORT": str(port), "AGENT_BIND_HOST": "127.0.0.1"},
    ) as proc:
        yield AgentClient(url=url, proc=proc)


def test_a_checkpoint_too_large_or_not_json_is_refused_with_what_is_expected(
    env: dict[str, str], results: ResultStore
) -> None:
    with checkpoint_agent(env) as agent:
        jobs = {
            name: agent.submit(kind, job_input)["job_id"]
            for name, kind, job_input in (
                ("oversized", "oversized", {}),
                ("oversized_cpu", "oversized_cpu", {}),
                ("not_json", "oversized", {"set": True}),
                ("not_resumable", "not_resumable", {}),
            )
        }
        refused = {
            name: agent.wait_for_end(job_id)["result"]["refused"] for name, job_id in jobs.items()
        }
    for name in ("oversized", "oversized_cpu"):
        assert str(MAX_CHECKPOINT_BYTES) in refused[name] and "bytes as JSON" in refused[name]
    assert "it holds a set" in refused["not_json"]
    assert "resumable=True" in refused["not_resumable"]
    assert all(results.get_checkpoint(job_id) is None for job_id in jobs.values())


def job_process_of(runtime: RuntimeProcess, session_id: str) -> Any:
    """The child process a `cpu` job of this session runs in (multiprocessing's spawn)."""
    found = job_processes(runtime.session_processes(session_id))
    return found[0] if found else None


def test_a_resumable_jobs_process_killed_from_outside_is_one_lost_attempt_not_a_lost_job(
    runtime: RuntimeProcess,
    moto: MotoEndpoint,
    world: tuple[LocalResources, str],
    results: ResultStore,
) -> None:
    # An OOM kill, a kill by hand: the agent lives on, its job's process does not. The try
    # is retried in place from the last checkpoint, counted as an attempt.
    events_table = world[1]
    session = new_session_id()
    job_input = {"seconds": 2, "cpu": True, "checkpoint_every_s": 0.25}
    job_id = submit(runtime, session, job_input, max_attempts=2)["job_id"]
    wait_for(lambda: results.get_checkpoint(job_id), "a first checkpoint")
    child = wait_for(lambda: job_process_of(runtime, session), "the job's process")
    child.send_signal(signal.SIGKILL)
    ended = wait_for_end(runtime, session, job_id)
    assert ended["status"] == "SUCCEEDED", ended
    assert ended["result"]["attempts"] == 2 and ended["result"]["resumed_from_s"] > 0
    retried = [e for e in events_of(moto, events_table, job_id) if e.type == "retried"]
    assert [e.detail.get("error_type") for e in retried] == ["ProcessKilled"]
    assert "killed by signal 9" in str(retried[0].detail.get("message"))


def test_a_killed_process_on_the_last_attempt_ends_the_job_crashed(
    runtime: RuntimeProcess, results: ResultStore
) -> None:
    session = new_session_id()
    job_input = {"seconds": 2, "cpu": True, "checkpoint_every_s": 0.25}
    job_id = submit(runtime, session, job_input)["job_id"]
    child = wait_for(lambda: job_process_of(runtime, session), "the job's process")
    child.send_signal(signal.SIGKILL)
    ended = wait_for_end(runtime, session, job_id)
    assert ended["status"] == "FAILED"
    assert ended["error"]["code"] == "JOB_CRASHED"
    assert "killed by signal 9" in ended["error"]["message"]
