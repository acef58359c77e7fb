"""The agent as a real process on moto: submit, status, result and cancel over HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agentjobs.record import INLINE_RESULT_LIMIT, from_item
from agentjobs.store import ResultStore
from emulator.resources import LocalResources
from testbed.agent import (
    AgentClient,
    agent_env,
    job_processes,
    new_session_id,
    running_agent,
)
from testbed.aws import MotoEndpoint


@pytest.fixture(scope="module")
def module_resources(moto: MotoEndpoint) -> LocalResources:
    return moto.create_resources()


@pytest.fixture(scope="module")
def agent_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("agent") / "agent.log"


@pytest.fixture(scope="module")
def agent(
    moto: MotoEndpoint, module_resources: LocalResources, agent_log: Path
) -> Iterator[AgentClient]:
    with running_agent(agent_env(moto, module_resources), log_path=agent_log) as client:
        yield client


@pytest.fixture
def results(moto: MotoEndpoint, module_resources: LocalResources) -> ResultStore:
    return ResultStore(moto.client("s3"), module_resources.bucket)


def test_submit_answers_at_once_while_a_ten_second_job_runs(agent: AgentClient) -> None:
    long_job = agent.submit("synthetic", {"seconds": 10, "cpu": True})
    assert long_job["status"] == "RUNNING"
    assert set(long_job) == {"job_id", "session_id", "status", "kind", "submitted_at"}
    assert long_job["session_id"] == agent.session_id
    # A second submit is answered while the first job is still working.
    second = agent.submit("synthetic", {"seconds": 0.2})
    assert second["status"] == "RUNNING"
    still = agent.invoke({"action": "status", "job_id": long_job["job_id"]})
    assert still["status"] == "RUNNING"
    assert agent.ping() == "HealthyBusy"
    cancelled = agent.invoke({"action": "cancel", "job_id": long_job["job_id"]})
    assert cancelled["status"] == "CANCELLED"
    agent.wait_for_end(second["job_id"])
    agent.wait_for_ping("Healthy")


def test_result_comes_back_on_a_later_invocation_of_the_same_session(
    agent: AgentClient, results: ResultStore
) -> None:
    session = new_session_id()
    submitted = agent.invoke(
        {"action": "submit", "kind": "synthetic", "input": {"seconds": 0.3, "result_bytes": 500}},
        session_id=session,
    )
    # Healthy once the job ended (asked from `session`: the job is that session's alone).
    agent.wait_for_ping("Healthy")
    # No job_id: the session's most recent job.
    answer = agent.invoke({"action": "result"}, session_id=session)
    assert answer["job_id"] == submitted["job_id"]
    assert answer["status"] == "SUCCEEDED"
    assert answer["progress"] == {"percent": 100.0, "message": "done"}
    assert 400 < len(json.dumps(answer["result"], separators=(",", ":"))) <= 500
    assert answer["finished_at"] >= answer["submitted_at"]
    assert results.get_outcome(submitted["job_id"]) == answer


def test_status_reports_progress_without_the_result(agent: AgentClient) -> None:
    job = agent.submit("synthetic", {"seconds": 0.2})
    agent.wait_for_end(job["job_id"])
    status = agent.invoke({"action": "status", "job_id": job["job_id"]})
    assert status["status"] == "SUCCEEDED"
    assert "result" not in status
    assert status["progress"]["percent"] == 100.0


@pytest.mark.parametrize("cpu", [False, True], ids=["in-process", "child-process"])
def test_failing_job_reports_failed_with_its_message_and_session_turns_healthy(
    agent: AgentClient, results: ResultStore, cpu: bool
) -> None:
    job = agent.submit("synthetic", {"seconds": 0.2, "cpu": cpu, "fail": "disk full at step 3"})
    answer = agent.wait_for_end(job["job_id"])
    assert answer["status"] == "FAILED"
    assert answer["error"] == {"code": "JOB_FAILED", "message": "disk full at step 3"}
    agent.wait_for_ping("Healthy")
    assert results.get_outcome(job["job_id"]) == answer


def test_cancel_stops_the_child_process_and_stores_the_outcome(
    agent: AgentClient, results: ResultStore
) -> None:
    job = agent.submit("synthetic", {"seconds": 30, "cpu": True})
    children = job_processes(agent)
    answer = agent.invoke({"action": "cancel", "job_id": job["job_id"]})
    assert answer["status"] == "CANCELLED"
    assert answer["error"]["code"] == "CANCELLED"
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
    assert results.get_outcome(job["job_id"]) == answer
    agent.wait_for_ping("Healthy")
    # Cancelling a finished job answers its terminal status.
    assert agent.invoke({"action": "cancel", "job_id": job["job_id"]})["status"] == "CANCELLED"


def test_cancel_of_an_in_process_job_stops_it(agent: AgentClient) -> None:
    job = agent.submit("synthetic", {"seconds": 30})
    answer = agent.invoke({"action": "cancel", "job_id": job["job_id"]})
    assert answer["status"] == "CANCELLED"


def test_large_result_lands_in_s3_with_its_pointer(
    agent: AgentClient, results: ResultStore
) -> None:
    job = agent.submit("synthetic", {"seconds": 0.1, "result_bytes": 2 * INLINE_RESULT_LIMIT})
    answer = agent.wait_for_end(job["job_id"])
    assert answer["status"] == "SUCCEEDED"
    assert "result" not in answer
    uri = answer["result_uri"]
    assert job["job_id"] in uri
    stored = results.read_uri(uri)
    assert stored is not None
    assert len(stored) == 2 * INLINE_RESULT_LIMIT
    assert json.loads(stored)["data"].startswith("xxx")
    assert results.get_outcome(job["job_id"]) == answer


def test_submit_writes_the_running_record_with_its_deadline_and_ttl(
    agent: AgentClient, moto: MotoEndpoint, module_resources: LocalResources
) -> None:
    job = agent.submit("synthetic", {"seconds": 0.1}, max_runtime_s=600)
    item = moto.client("dynamodb").get_item(
        TableName=module_resources.table, Key={"job_id": {"S": job["job_id"]}}
    )["Item"]
    record = from_item(item)
    assert record.status == "RUNNING"
    assert record.session_id == agent.session_id
    assert record.max_runtime_s == 600
    assert record.deadline_at > record.submitted_at
    assert record.expires_at is not None
    assert item["attention"] == {"S": "PENDING"}


def test_same_client_token_returns_the_same_job_and_starts_nothing(
    agent: AgentClient, moto: MotoEndpoint, module_resources: LocalResources
) -> None:
    token = f"tok-{uuid.uuid4()}"
    first = agent.submit("synthetic", {"seconds": 0.3}, client_token=token)
    again = agent.submit("synthetic", {"seconds": 0.3}, client_token=token)
    assert again["job_id"] == first["job_id"]
    assert again["submitted_at"] == first["submitted_at"]
    # Without an owner a token is the session's: another session's equal token is its own job.
    other_session = new_session_id()
    other = agent.invoke(
        {"action": "submit", "kind": "synthetic", "input": {"seconds": 0.3}, "client_token": token},
        session_id=other_session,
    )
    assert other["job_id"] != first["job_id"]
    assert other["session_id"] == other_session
    agent.wait_for_end(first["job_id"])


def test_job_past_its_max_runtime_is_stopped_as_timed_out(agent: AgentClient) -> None:
    job = agent.submit("synthetic", {"seconds": 30, "cpu": True}, max_runtime_s=0.5)
    answer = agent.wait_for_end(job["job_id"])
    assert answer["status"] == "FAILED"
    assert answer["error"]["code"] == "TIMED_OUT"


def test_unknown_job_and_no_job_yet_answer_unknown(agent: AgentClient) -> None:
    unknown = agent.invoke({"action": "status", "job_id": "0" * 32})
    assert unknown["status"] == "UNKNOWN"
    assert unknown["job_id"] == "0" * 32
    assert unknown["error"]["code"] == "UNKNOWN_JOB"
    fresh = agent.invoke({"action": "result"}, session_id=new_session_id())
    assert fresh["status"] == "UNKNOWN"
    assert fresh["job_id"] is None


def test_data_report_profiles_a_csv_from_s3(
    agent: AgentClient, moto: MotoEndpoint, module_resources: LocalResources
) -> None:
    rows = "\n".join(f"{i},{'red' if i % 3 else 'blue'},{i * 1.5}" for i in range(1, 40))
    moto.client("s3").put_object(
        Bucket=module_resources.bucket,
        Key="inputs/sales.csv",
        Body=f"id,colour,amount\n{rows}\n40,red,9999\n".encode(),
    )
    job = agent.submit(
        "data_report",
        {"csv_uri": f"s3://{module_resources.bucket}/inputs/sales.csv", "title": "Sales"},
    )
    answer = agent.wait_for_end(job["job_id"])
    assert answer["status"] == "SUCCEEDED", answer
    result = answer["result"]
    assert result["rows"] == 40
    amount = next(c for c in result["columns"] if c["name"] == "amount")
    assert amount["type"] == "number"
    assert amount["outliers"]["examples"] == [9999.0]
    assert result["markdown"].startswith("# Sales")


def test_data_report_of_a_missing_object_fails_with_a_clear_message(
    agent: AgentClient, module_resources: LocalResources
) -> None:
    uri = f"s3://{module_resources.bucket}/inputs/none.csv"
    job = agent.submit("data_report", {"csv_uri": uri})
    answer = agent.wait_for_end(job["job_id"])
    assert answer["status"] == "FAILED"
    assert answer["error"]["message"].startswith("the object named by csv_uri could not be read")
    assert uri not in answer["error"]["message"]


def test_agent_kind_works_the_prompt_in_steps_with_the_scripted_model(
    agent: AgentClient,
) -> None:
    job = agent.submit("agent", {"prompt": "Summarise the risks of a database migration"})
    answer = agent.wait_for_end(job["job_id"])
    assert answer["status"] == "SUCCEEDED", answer
    result = answer["result"]
    assert [s["step"] for s in result["steps"]] == ["plan", "step 1", "step 2", "step 3"]
    assert "database migration" in result["steps"][0]["text"]
    assert result["answer"]
    assert result["usage"]["output_tokens"] > 0


def test_prompt_payload_submits_the_default_agent_kind(agent: AgentClient) -> None:
    job = agent.invoke({"prompt": "Write a haiku about queues"})
    assert job["kind"] == "agent"
    assert agent.wait_for_end(job["job_id"])["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ([], "INVALID_REQUEST"),
        ({"action": "launch"}, "UNKNOWN_ACTION"),
        ({"action": "submit", "kind": "poem"}, "UNKNOWN_KIND"),
        ({"action": "submit", "kind": "synthetic", "input": {"seconds": "ten"}}, "INVALID_INPUT"),
        ({"action": "submit", "kind": "synthetic", "input": {"secs": 1}}, "INVALID_INPUT"),
        ({"action": "submit", "kind": "data_report", "input": {}}, "INVALID_INPUT"),
        ({"action": "submit", "kind": "agent", "input": {"prompt": ""}}, "INVALID_INPUT"),
        (
            {"action": "submit", "kind": "synthetic", "input": {"x": "y" * 1_000_001}},
            "INPUT_TOO_LARGE",
        ),
        ({"action": "status", "job_id": 7}, "INVALID_REQUEST"),
    ],
)
def test_bad_requests_get_an_error_object_and_start_nothing(
    agent: AgentClient, payload: object, code: str
) -> None:
    session = new_session_id()
    answer = agent.invoke(payload, session_id=session)
    assert set(answer) == {"error"}
    assert answer["error"]["code"] == code
    assert answer["error"]["message"]
    assert agent.invoke({"action": "status"}, session_id=session)["status"] == "UNKNOWN"


def test_invalid_json_keeps_the_sdk_400(agent: AgentClient) -> None:
    status, body = agent.post(b"{not json")
    assert status == 400
    assert body["error"] == "Invalid JSON"


def test_session_header_absent_uses_one_generated_session(agent: AgentClient) -> None:
    job = agent.invoke({"action": "submit", "kind": "synthetic", "input": {"seconds": 0.1}}, "")
    assert job["session_id"].startswith("local-")
    latest = agent.invoke({"action": "status"}, session_id="")
    assert latest["job_id"] == job["job_id"]


def test_agent_log_holds_no_payload_contents(agent: AgentClient, agent_log: Path) -> None:
    secret = f"payload-secret-{uuid.uuid4().hex}"
    job = agent.submit("synthetic", {"seconds": 0.1, "fail": secret})
    agent.wait_for_end(job["job_id"])
    agent.invoke({"action": "submit", "kind": "poem", "input": {"text": secret}})
    assert job["job_id"] in agent_log.read_text()
    assert secret not in agent_log.read_text()
