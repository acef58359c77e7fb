"""A fresh agent process in a session answers the session's jobs from the job table and S3."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from agentjobs.protocol import JobStatus
from agentjobs.record import to_item
from agentjobs.store import JobStore, ResultStore
from emulator.resources import LocalResources
from testbed.agent import (
    SESSION_HEADER,
    TERMINAL,
    AgentClient,
    agent_env,
    new_session_id,
    running_agent,
)
from testbed.aws import MotoEndpoint

USER_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"


def invoke_as(
    agent: AgentClient, payload: Any, session_id: str, owner: str | None = None
) -> dict[str, Any]:
    """POST a payload with the session header and, when given, the user id header."""
    headers = {"Content-Type": "application/json", SESSION_HEADER: session_id}
    if owner is not None:
        headers[USER_HEADER] = owner
    request = urllib.request.Request(
        f"{agent.url}/invocations", data=json.dumps(payload).encode(), headers=headers
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        body: dict[str, Any] = json.loads(answer.read())
    return body


def without_live(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer.pop("live") is False
    return answer


@pytest.fixture(scope="module")
def resources(moto: MotoEndpoint) -> LocalResources:
    """One table and bucket for the module: each test's jobs have sessions of their own."""
    return moto.create_resources()


@pytest.fixture(scope="module")
def env(moto: MotoEndpoint, resources: LocalResources) -> dict[str, str]:
    return agent_env(moto, resources)


@pytest.fixture(scope="module")
def worker(env: dict[str, str]) -> Iterator[AgentClient]:
    """The process that runs the module's jobs, each in a session of its own."""
    with running_agent(env) as agent:
        yield agent


@pytest.fixture(scope="module")
def fresh(env: dict[str, str]) -> Iterator[AgentClient]:
    """A process that never runs a job: all it knows of any job is what the stores hold, as a
    fresh process in a recycled session (it keeps nothing of what it read between calls)."""
    with running_agent(env) as agent:
        yield agent


def finished_in_its_own_session(
    worker: AgentClient, job_input: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Run one job to its end in a session of its own: (session, the live answer)."""
    session = new_session_id()
    job = worker.invoke({"action": "submit", "kind": "synthetic", "input": job_input}, session)
    deadline = time.monotonic() + 60
    while True:
        answer = worker.invoke({"action": "result", "job_id": job["job_id"]}, session)
        if answer["status"] in TERMINAL:
            return session, answer
        assert time.monotonic() < deadline, f"job {job['job_id']} did not end: {answer}"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("job_input", "status"),
    [
        ({"seconds": 0.1, "result_bytes": 300}, "SUCCEEDED"),
        ({"seconds": 0.1, "result_bytes": 100_000}, "SUCCEEDED"),
        ({"seconds": 0.1, "fail": "the source is empty"}, "FAILED"),
    ],
    ids=["small", "large", "failed"],
)
def test_a_fresh_process_answers_a_finished_job_as_the_live_one_did(
    moto: MotoEndpoint,
    resources: LocalResources,
    worker: AgentClient,
    fresh: AgentClient,
    job_input: dict[str, Any],
    status: str,
) -> None:
    session, live = finished_in_its_own_session(worker, job_input)
    assert live["status"] == status
    # The table still says RUNNING (no poller ran): the durable outcome decides.
    stored = JobStore(moto.client("dynamodb"), resources.table).get(live["job_id"])
    assert stored is not None and stored.status == JobStatus.RUNNING
    by_id = fresh.invoke({"action": "result", "job_id": live["job_id"]}, session)
    latest = fresh.invoke({"action": "result"}, session)
    status_answer = fresh.invoke({"action": "status"}, session)
    assert without_live(by_id) == live
    assert without_live(latest) == live
    expected_status = {k: v for k, v in live.items() if k not in {"result", "result_uri"}}
    assert without_live(status_answer) == expected_status
    if job_input.get("result_bytes", 0) > 64 * 1024:
        assert live["result_uri"].startswith(f"s3://{resources.bucket}/")
    if status == "FAILED":
        assert live["error"] == {"code": "JOB_FAILED", "message": "the source is empty"}


def test_a_job_whose_process_died_answers_running_not_live_and_cancel_changes_nothing(
    moto: MotoEndpoint, resources: LocalResources, env: dict[str, str], fresh: AgentClient
) -> None:
    with running_agent(env) as agent:
        job = agent.submit("synthetic", {"seconds": 60})
        session = agent.session_id
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait(10)
    status = fresh.invoke({"action": "status", "job_id": job["job_id"]}, session)
    cancelled = fresh.invoke({"action": "cancel"}, session)
    ping = fresh.invoke({"method": "ping"}, session)
    assert status["status"] == "RUNNING" and status["live"] is False
    assert cancelled == status
    assert ping == {
        "status": "Healthy",
        "jobs": [
            {
                "job_id": job["job_id"],
                "kind": "synthetic",
                "status": "RUNNING",
                "submitted_at": job["submitted_at"],
                "live": False,
            }
        ],
    }
    stored = JobStore(moto.client("dynamodb"), resources.table).get(job["job_id"])
    assert stored is not None and stored.status == JobStatus.RUNNING
    assert ResultStore(moto.client("s3"), resources.bucket).get_outcome(job["job_id"]) is None


def test_a_terminal_record_wins_over_the_outcome_and_a_cancel_changes_nothing(
    moto: MotoEndpoint, resources: LocalResources, worker: AgentClient, fresh: AgentClient
) -> None:
    session, live = finished_in_its_own_session(worker, {"seconds": 0.1})
    store = JobStore(moto.client("dynamodb"), resources.table)
    record = store.get(live["job_id"])
    assert record is not None
    # What the poller leaves when it ends a job itself (here: timed out), written as it writes.
    timed_out = record.evolve(status=JobStatus.TIMED_OUT, finished_at=record.submitted_at)
    moto.client("dynamodb").put_item(TableName=resources.table, Item=to_item(timed_out))
    answer = fresh.invoke({"action": "cancel", "job_id": live["job_id"]}, session)
    assert answer["status"] == "TIMED_OUT" and answer["live"] is False
    assert store.get(live["job_id"]) == timed_out


def test_only_the_owner_or_the_jobs_own_session_may_read_it(
    worker: AgentClient, fresh: AgentClient
) -> None:
    session = new_session_id()
    submit = {"action": "submit", "kind": "synthetic", "input": {"seconds": 0.1}}
    owned = invoke_as(worker, submit, session, "alice")
    anonymous = invoke_as(worker, submit, session)
    # In their own session a call naming no user (as the poller's) sees both jobs.
    for job in (owned, anonymous):
        deadline = time.monotonic() + 60
        while invoke_as(worker, {"action": "status", "job_id": job["job_id"]}, session)[
            "status"
        ] not in {"SUCCEEDED", "FAILED"}:
            assert time.monotonic() < deadline, f"job {job['job_id']} did not end"
            time.sleep(0.05)
    elsewhere = new_session_id()
    mine = invoke_as(fresh, {"action": "result", "job_id": owned["job_id"]}, elsewhere, "alice")
    assert mine["status"] == "SUCCEEDED" and mine["live"] is False
    for payload, session_id, owner in [
        ({"action": "result", "job_id": owned["job_id"]}, session, "bob"),
        ({"action": "status", "job_id": owned["job_id"]}, elsewhere, None),
        ({"action": "cancel", "job_id": anonymous["job_id"]}, elsewhere, None),
        ({"action": "result", "job_id": anonymous["job_id"]}, elsewhere, "alice"),
    ]:
        refused = invoke_as(fresh, payload, session_id, owner)
        # Exactly as a job that does not exist: nothing tells another caller it is real.
        assert refused == {
            "job_id": payload["job_id"],
            "status": "UNKNOWN",
            "error": {
                "code": "UNKNOWN_JOB",
                "message": "no job with this id in this session or the job table that "
                "this caller may read",
            },
        }
    anonymous_here = invoke_as(fresh, {"action": "result"}, session)
    assert anonymous_here["job_id"] == anonymous["job_id"]


def test_unknown_and_malformed_job_ids(fresh: AgentClient) -> None:
    session = new_session_id()
    unknown = fresh.invoke({"action": "result", "job_id": "0" * 32}, session)
    assert unknown["status"] == "UNKNOWN"
    assert "no job with this id in this session or the job table" in (unknown["error"]["message"])
    none_yet = fresh.invoke({"action": "status"}, session)
    assert none_yet["status"] == "UNKNOWN" and none_yet["job_id"] is None
    for bad in ["not-a-job", "0" * 31, "A" * 32, "../" * 11]:
        answer = fresh.invoke({"action": "status", "job_id": bad}, session)
        assert set(answer) == {"error"}, answer
        assert answer["error"]["code"] == "INVALID_REQUEST"
        assert "32 lowercase hexadecimal" in answer["error"]["message"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("breakage", ["missing table", "unreachable endpoint"])
def test_unreadable_stores_answer_retry_never_unknown(
    moto: MotoEndpoint, resources: LocalResources, breakage: str
) -> None:
    env = agent_env(moto, resources)
    if breakage == "missing table":
        env["JOBS_TABLE"] = "no-such-table"
    else:
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{_closed_port()}"
    with running_agent(env) as agent:
        for payload in [{"action": "result", "job_id": "0" * 32}, {"action": "status"}]:
            answer = agent.invoke(payload)
            assert set(answer) == {"error"}, answer
            assert answer["error"]["code"] == "JOB_STORE_UNAVAILABLE"
            assert "retry" in answer["error"]["message"]
        ping = agent.invoke({"method": "ping"})
        assert ping["status"] == "Healthy" and ping["jobs"] == []
        assert ping["error"]["code"] == "JOB_STORE_UNAVAILABLE"


def test_ping_method_reports_busy_and_the_sessions_jobs(worker: AgentClient) -> None:
    session, done = finished_in_its_own_session(worker, {"seconds": 0.1})
    busy = worker.invoke(
        {"action": "submit", "kind": "synthetic", "input": {"seconds": 60}}, session
    )
    try:
        ping = worker.invoke({"method": "ping"}, session)
        with_payload = worker.invoke({"method": "ping", "payload": {"anything": [1]}}, session)
        assert ping == with_payload
        assert ping["status"] == "HealthyBusy"
        assert [(j["job_id"], j["status"], j["live"]) for j in ping["jobs"]] == [
            (busy["job_id"], "RUNNING", True),
            (done["job_id"], "SUCCEEDED", True),
        ]
        other = worker.invoke({"method": "ping"}, session_id=new_session_id())
        assert other == {"status": "HealthyBusy", "jobs": []}
        for bad, code in [
            ({"method": "pong"}, "UNKNOWN_ACTION"),
            ({"method": "ping", "payload": "x"}, "INVALID_REQUEST"),
            ({"method": "ping", "job_id": "x"}, "INVALID_REQUEST"),
        ]:
            answer = worker.invoke(bad, session)
            assert set(answer) == {"error"} and answer["error"]["code"] == code, answer
    finally:
        # The worker runs the module's other jobs: it is left with none of this test's.
        worker.invoke({"action": "cancel", "job_id": busy["job_id"]}, session)
