"""Hostile input and hostile callers against the real agent on moto: bounds, Unicode, what
data_report may read, ownership and idempotency, and the per-session job cap."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentjobs.limits import MAX_S3_KEY_BYTES
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

USER_ID_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"
JOB_CAP = 2


@pytest.fixture(scope="module")
def module_resources(moto: MotoEndpoint) -> LocalResources:
    return moto.create_resources()


@pytest.fixture(scope="module")
def agent_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile") / "agent.log"


@pytest.fixture(scope="module")
def agent(
    moto: MotoEndpoint, module_resources: LocalResources, agent_log: Path
) -> Iterator[AgentClient]:
    env = agent_env(moto, module_resources, MAX_JOBS_PER_SESSION=str(JOB_CAP))
    with running_agent(env, log_path=agent_log) as client:
        yield client


def _post(
    agent: AgentClient, body: bytes, session_id: str | None, owner: str | None = None
) -> tuple[int, Any]:
    """POST raw bytes with the session and user id headers as given (None: header absent)."""
    headers = {"Content-Type": "application/json"}
    if session_id is not None:
        headers[SESSION_HEADER] = session_id
    if owner is not None:
        headers[USER_ID_HEADER] = owner
    request = urllib.request.Request(f"{agent.url}/invocations", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _ask(
    agent: AgentClient, payload: dict[str, Any], session_id: str | None, owner: str | None = None
) -> dict[str, Any]:
    status, answer = _post(agent, json.dumps(payload).encode(), session_id, owner)
    assert status == 200, (status, answer)
    assert isinstance(answer, dict), answer
    return answer


def _wait_for_end(
    agent: AgentClient, job: dict[str, Any], owner: str | None = None, timeout_s: float = 60.0
) -> dict[str, Any]:
    """Ask for the job's result as its own caller (its session, its owner) until it ends."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = _ask(
            agent, {"action": "result", "job_id": job["job_id"]}, job["session_id"], owner
        )
        if answer.get("status") in TERMINAL:
            return answer
        time.sleep(0.05)
    raise TimeoutError(f"job {job['job_id']} did not end within {timeout_s} s")


def _assert_refused(answer: dict[str, Any], codes: set[str], says: str) -> None:
    assert set(answer) == {"error"}, answer
    assert answer["error"]["code"] in codes, answer
    assert says in answer["error"]["message"], answer


def _assert_no_job(agent: AgentClient, session_id: str) -> None:
    assert agent.invoke({"action": "status"}, session_id=session_id)["status"] == "UNKNOWN"


def _table_items(moto: MotoEndpoint, resources: LocalResources) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = moto.client("dynamodb").scan(TableName=resources.table)["Items"]
    return items


# -- text that is not UTF-8 -------------------------------------------------------------

SURROGATE = "\ud800"


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "status", "job_id": SURROGATE},
        {"action": "result", "job_id": SURROGATE},
        {"prompt": SURROGATE},
        {"action": "submit", "kind": "synthetic", "input": {}, "client_token": SURROGATE},
        {"action": "submit", "kind": "agent", "input": {"prompt": "hi" + SURROGATE}},
        {"action": "submit", "kind": "synthetic", "input": {"fail": SURROGATE}},
        {"action": "submit", "kind": "data_report", "input": {"csv": "a,b\n1," + SURROGATE}},
        {"action": "submit", "kind": "synthetic", "input": {SURROGATE: 1}},
    ],
    ids=["status", "result", "prompt", "token", "agent-input", "fail", "csv", "input-key"],
)
def test_a_lone_surrogate_anywhere_is_refused_before_anything_starts(
    agent: AgentClient,
    agent_log: Path,
    moto: MotoEndpoint,
    module_resources: LocalResources,
    payload: dict[str, Any],
) -> None:
    session = new_session_id()
    before = len(_table_items(moto, module_resources))
    answer = _ask(agent, payload, session)
    _assert_refused(answer, {"INVALID_REQUEST", "INVALID_INPUT"}, "UTF-8")
    _assert_no_job(agent, session)
    assert len(_table_items(moto, module_resources)) == before
    assert "Traceback" not in agent_log.read_text()


# -- bounds where each field enters -----------------------------------------------------


@pytest.mark.parametrize(
    ("session_id", "owner", "says"),
    [
        ("short-session", None, "33 to 256"),
        ("s" * 257, None, "33 to 256"),
        (None, "o" * 257, "at most 256"),
    ],
    ids=["session-too-short", "session-too-long", "owner-too-long"],
)
def test_caller_headers_outside_their_limits_are_refused(
    agent: AgentClient, session_id: str | None, owner: str | None, says: str
) -> None:
    payload = {"action": "submit", "kind": "synthetic", "input": {"seconds": 0.1}}
    answer = _ask(agent, payload, session_id, owner)
    _assert_refused(answer, {"INVALID_REQUEST"}, says)


def test_direct_http_without_a_session_header_keeps_working(agent: AgentClient) -> None:
    job = _ask(agent, {"action": "submit", "kind": "synthetic", "input": {"seconds": 0}}, None)
    assert job["session_id"].startswith("local-")
    assert _wait_for_end(agent, job)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"action": "submit", "kind": "k" * 65}, "at most 64"),
        ({"action": "status", "job_id": "j" * 129}, "at most 128"),
        ({"action": "submit", "kind": "synthetic", "client_token": "t" * 257}, "at most 256"),
        (
            {"action": "submit", "kind": "synthetic", "input": {"fail": "f" * 2001}},
            "at most 2000",
        ),
        (
            {
                "action": "submit",
                "kind": "data_report",
                "input": {"csv": "a\n1", "title": "t" * 201},
            },
            "at most 200",
        ),
    ],
    ids=["kind", "job-id", "token", "fail", "title"],
)
def test_fields_past_their_limits_are_refused_naming_the_limit(
    agent: AgentClient, payload: dict[str, Any], says: str
) -> None:
    session = new_session_id()
    _assert_refused(_ask(agent, payload, session), {"INVALID_REQUEST", "INVALID_INPUT"}, says)
    _assert_no_job(agent, session)


# -- what data_report may read ----------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["other-bucket/inputs/a.csv", "{bucket}/jobs/0123/outcome.json", "{bucket}/a.csv"],
)
def test_data_report_refuses_uris_outside_the_input_prefix_at_submit(
    agent: AgentClient, module_resources: LocalResources, where: str
) -> None:
    session = new_session_id()
    uri = "s3://" + where.format(bucket=module_resources.bucket)
    answer = _ask(
        agent, {"action": "submit", "kind": "data_report", "input": {"csv_uri": uri}}, session
    )
    _assert_refused(answer, {"INVALID_INPUT"}, f"s3://{module_resources.bucket}/inputs/")
    _assert_no_job(agent, session)


def test_data_report_refuses_a_key_longer_than_s3_allows(
    agent: AgentClient, module_resources: LocalResources
) -> None:
    session = new_session_id()
    key = "inputs/" + "k" * MAX_S3_KEY_BYTES
    uri = f"s3://{module_resources.bucket}/{key}"
    answer = _ask(
        agent, {"action": "submit", "kind": "data_report", "input": {"csv_uri": uri}}, session
    )
    _assert_refused(answer, {"INVALID_INPUT"}, f"{MAX_S3_KEY_BYTES} bytes")
    assert key not in answer["error"]["message"]
    _assert_no_job(agent, session)


def test_s3_errors_answer_one_message_that_names_no_code_and_copies_no_uri(
    agent: AgentClient, moto: MotoEndpoint, module_resources: LocalResources
) -> None:
    s3 = moto.client("s3")
    archived_key = "inputs/archived-" + "a" * 900 + ".csv"
    # An archived object answers InvalidObjectState, a missing one NoSuchKey: the caller must
    # not be able to tell S3's answers apart (an existence oracle).
    s3.put_object(
        Bucket=module_resources.bucket,
        Key=archived_key,
        Body=b"a,b\n1,2\n",
        StorageClass="GLACIER",
    )
    missing_key = "inputs/missing-" + "m" * 900 + ".csv"
    messages = []
    for key in (archived_key, missing_key):
        uri = f"s3://{module_resources.bucket}/{key}"
        job = agent.submit("data_report", {"csv_uri": uri})
        answer = agent.wait_for_end(job["job_id"])
        assert answer["status"] == "FAILED", answer
        assert answer["error"]["code"] == "JOB_FAILED"
        messages.append(answer["error"]["message"])
    assert messages[0] == messages[1]
    message = messages[0]
    assert "csv_uri" in message
    for leaked in ("NoSuchKey", "InvalidObjectState", "AccessDenied", "a" * 50, "m" * 50):
        assert leaked not in message
    assert len(message) < 300


# -- ownership and idempotency ----------------------------------------------------------


def _submit(
    agent: AgentClient,
    session_id: str,
    owner: str | None,
    token: str,
    job_input: dict[str, Any] | None = None,
) -> dict[str, Any]:
    payload = {
        "action": "submit",
        "kind": "synthetic",
        "input": job_input if job_input is not None else {"seconds": 0.2},
        "client_token": token,
    }
    return _ask(agent, payload, session_id, owner)


def test_a_client_token_without_an_owner_is_scoped_to_its_session(agent: AgentClient) -> None:
    token = f"report-{uuid.uuid4().hex}"
    first = _submit(agent, new_session_id(), None, token)
    second_session = new_session_id()
    second = _submit(agent, second_session, None, token)
    assert second["job_id"] != first["job_id"]
    assert second["session_id"] == second_session
    for job in (first, second):
        _wait_for_end(agent, job)


def test_a_client_token_with_an_owner_is_scoped_to_the_owner(agent: AgentClient) -> None:
    token = f"report-{uuid.uuid4().hex}"
    session = new_session_id()
    alice = _submit(agent, session, "alice", token)
    bob = _submit(agent, session, "bob", token)
    assert bob["job_id"] != alice["job_id"]
    # Alice's retry lands in another session: the same job, started nowhere else.
    again = _submit(agent, new_session_id(), "alice", token)
    assert again["job_id"] == alice["job_id"]
    assert again["session_id"] == session
    _wait_for_end(agent, alice, "alice")
    _wait_for_end(agent, bob, "bob")


def test_the_record_keeps_the_requests_fingerprint(
    agent: AgentClient, moto: MotoEndpoint, module_resources: LocalResources
) -> None:
    job = _submit(agent, new_session_id(), None, f"tok-{uuid.uuid4().hex}", {"seconds": 0.1})
    item = moto.client("dynamodb").get_item(
        TableName=module_resources.table, Key={"job_id": {"S": job["job_id"]}}
    )["Item"]
    canonical = b'{"input":{"seconds":0.1},"kind":"synthetic","max_runtime_s":28800.0}'
    assert item["request_fingerprint"] == {"S": hashlib.sha256(canonical).hexdigest()}
    _wait_for_end(agent, job)


def test_a_reused_token_with_different_input_answers_idempotency_mismatch(
    agent: AgentClient,
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    session = new_session_id()
    first = _submit(agent, session, None, token, {"seconds": 0.2})
    changed = [
        {"action": "submit", "kind": "synthetic", "input": {"seconds": 0.3}, "client_token": token},
        {
            "action": "submit",
            "kind": "synthetic",
            "input": {"seconds": 0.2},
            "client_token": token,
            "max_runtime_s": 60,
        },
        {
            "action": "submit",
            "kind": "data_report",
            "input": {"csv": "a\n1"},
            "client_token": token,
        },
    ]
    for payload in changed:
        _assert_refused(_ask(agent, payload, session), {"IDEMPOTENCY_MISMATCH"}, "client_token")
    # Nothing new started: the session's latest job is still the first.
    assert agent.invoke({"action": "status"}, session_id=session)["job_id"] == first["job_id"]
    # The same request again is still the same job.
    assert _submit(agent, session, None, token, {"seconds": 0.2})["job_id"] == first["job_id"]
    _wait_for_end(agent, first)


def test_the_fingerprint_is_checked_for_jobs_only_the_table_knows(
    agent: AgentClient, moto: MotoEndpoint, module_resources: LocalResources
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    first = _submit(agent, new_session_id(), "carol", token, {"seconds": 0.2})
    _wait_for_end(agent, first, "carol")
    # Another agent process on the same table has never seen the job.
    with running_agent(agent_env(moto, module_resources)) as other:
        session = new_session_id()
        mismatch = _submit(other, session, "carol", token, {"seconds": 5})
        _assert_refused(mismatch, {"IDEMPOTENCY_MISMATCH"}, "client_token")
        _assert_no_job(other, session)
        same = _submit(other, session, "carol", token, {"seconds": 0.2})
        assert same["job_id"] == first["job_id"]


def test_status_result_and_cancel_are_answered_only_to_the_jobs_owner(
    agent: AgentClient,
) -> None:
    session = new_session_id()
    job = _submit(agent, session, "alice", f"tok-{uuid.uuid4().hex}", {"seconds": 30})
    job_id = job["job_id"]
    strangers: list[tuple[str, str | None]] = [
        (session, "mallory"),
        (new_session_id(), "mallory"),
        (new_session_id(), None),
    ]
    for where, who in strangers:
        for action in ("status", "result", "cancel"):
            answer = _ask(agent, {"action": action, "job_id": job_id}, where, who)
            assert answer["status"] == "UNKNOWN", (where, who, answer)
            assert "session_id" not in answer
            assert "progress" not in answer
        latest = _ask(agent, {"action": "status"}, where, who)
        assert latest["status"] == "UNKNOWN"
    # In its own session, a call naming no user (the poller's, the submitting app's) sees it.
    mine = _ask(agent, {"action": "status", "job_id": job_id}, session, None)
    assert mine["status"] == "RUNNING" and mine["job_id"] == job_id
    # Nothing a stranger did stopped it; its owner sees it from any session.
    seen = _ask(agent, {"action": "status", "job_id": job_id}, new_session_id(), "alice")
    assert seen["status"] == "RUNNING"
    cancelled = _ask(agent, {"action": "cancel", "job_id": job_id}, session, "alice")
    assert cancelled["status"] == "CANCELLED"


def test_a_job_without_an_owner_is_answered_only_in_its_session(agent: AgentClient) -> None:
    session = new_session_id()
    job = _ask(agent, {"action": "submit", "kind": "synthetic", "input": {"seconds": 30}}, session)
    elsewhere = new_session_id()
    for action in ("status", "result", "cancel"):
        answer = _ask(agent, {"action": action, "job_id": job["job_id"]}, elsewhere)
        assert answer["status"] == "UNKNOWN"
    # Claiming an owner does not open a job that has none.
    assert (
        _ask(agent, {"action": "status", "job_id": job["job_id"]}, elsewhere, "x")["status"]
        == "UNKNOWN"
    )
    assert (
        _ask(agent, {"action": "status", "job_id": job["job_id"]}, session)["status"] == "RUNNING"
    )
    assert (
        _ask(agent, {"action": "cancel", "job_id": job["job_id"]}, session)["status"] == "CANCELLED"
    )


# -- the per-session job cap ------------------------------------------------------------


def test_past_the_per_session_cap_a_submit_is_refused_and_starts_nothing(
    agent: AgentClient, moto: MotoEndpoint, module_resources: LocalResources
) -> None:
    session = new_session_id()
    token = f"tok-{uuid.uuid4().hex}"
    running = [
        _submit(agent, session, None, token, {"seconds": 30}),
        _ask(agent, {"action": "submit", "kind": "synthetic", "input": {"seconds": 30}}, session),
    ]
    assert len(running) == JOB_CAP
    before = len(_table_items(moto, module_resources))
    refused = _ask(agent, {"action": "submit", "kind": "synthetic", "input": {}}, session)
    _assert_refused(refused, {"TOO_MANY_JOBS"}, f"{JOB_CAP}")
    assert "MAX_JOBS_PER_SESSION" in refused["error"]["message"]
    assert len(_table_items(moto, module_resources)) == before
    assert agent.invoke({"action": "status"}, session_id=session)["job_id"] == running[1]["job_id"]
    # A retry of a running job is still answered with it, cap or not.
    assert _submit(agent, session, None, token, {"seconds": 30})["job_id"] == running[0]["job_id"]
    # Another session has its own room.
    other = _ask(
        agent, {"action": "submit", "kind": "synthetic", "input": {"seconds": 0}}, new_session_id()
    )
    assert other["status"] == "RUNNING"
    # A job that ends frees its place.
    _ask(agent, {"action": "cancel", "job_id": running[0]["job_id"]}, session)
    freed = _ask(agent, {"action": "submit", "kind": "synthetic", "input": {"seconds": 0}}, session)
    assert freed["status"] == "RUNNING", freed
    for job in (running[1], freed):
        _ask(agent, {"action": "cancel", "job_id": job["job_id"]}, session)
