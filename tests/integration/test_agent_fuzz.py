"""Malformed and hostile payloads thrown at the real agent: never a 5xx, never a crash, never
INTERNAL_ERROR, always an answer; a job it accepts runs to its end and is recorded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentjobs import limits
from agentjobs.protocol import ErrorCode
from emulator.resources import LocalResources
from testbed.agent import TERMINAL, AgentClient, agent_env, running_agent
from testbed.aws import MotoEndpoint
from tests.support.hostile_text import any_text, hostile_text, raw_json

FIELDS = [
    "action",
    "kind",
    "input",
    "job_id",
    "client_token",
    "max_runtime_s",
    "prompt",
    "seconds",
    "fail",
    "result_bytes",
    "csv",
    "csv_uri",
]
WORDS = ["submit", "status", "result", "cancel", "synthetic", "data_report", "agent", ""]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile_text
    | st.sampled_from(WORDS)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | any_text, inner, max_size=5)
    ),
    max_leaves=12,
)
# Payloads shaped like requests, with wrong values where they hurt.
requestish = st.fixed_dictionaries(
    {"action": st.sampled_from(WORDS) | json_scalars},
    optional={
        "kind": st.sampled_from(WORDS) | json_values,
        "input": json_values,
        "job_id": json_values,
        "client_token": json_values,
        "max_runtime_s": json_values,
    },
)
payloads = json_values | requestish


@dataclass
class FuzzedAgent:
    """The real agent, and the table and bucket it writes to."""

    client: AgentClient
    moto: MotoEndpoint
    resources: LocalResources

    def post(self, body: bytes) -> tuple[int, Any]:
        return self.client.post(body)

    def record(self, job_id: str) -> dict[str, Any] | None:
        item = (
            self.moto.client("dynamodb")
            .get_item(
                TableName=self.resources.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
            )
            .get("Item")
        )
        return dict(item) if item else None


@pytest.fixture(scope="module")
def agent(moto: MotoEndpoint) -> Iterator[FuzzedAgent]:
    resources: LocalResources = moto.create_resources()
    env = agent_env(moto, resources)
    # No model: a payload that happens to be a valid prompt is refused, not run.
    del env["JOBAGENT_SCRIPTED_MODEL"]
    with running_agent(env) as client:
        yield FuzzedAgent(client, moto, resources)


def _assert_answer(status: int, body: Any) -> None:
    assert status == 200, (status, body)
    assert isinstance(body, dict)
    assert "error" in body or "status" in body
    if "error" in body:
        error = body["error"]
        assert set(error) == {"code", "message"}
        assert error["code"].isupper()
        # INTERNAL_ERROR means the edge caught an exception: a bug, never an answer to input.
        assert error["code"] != ErrorCode.INTERNAL_ERROR, body
        assert error["message"]
        assert "Traceback" not in error["message"]
        assert "/" not in error["code"]


def _follow_to_end(agent: FuzzedAgent, job_id: str) -> None:
    """A job the fuzzer got accepted runs to its end (cancelled if it would run long), and
    the agent recorded it."""
    client = agent.client
    try:
        answer = client.wait_for_end(job_id, timeout_s=10)
    except TimeoutError:
        cancelled = client.invoke({"action": "cancel", "job_id": job_id})
        _assert_answer(200, cancelled)
        answer = client.wait_for_end(job_id, timeout_s=30)
    _assert_answer(200, answer)
    assert answer["status"] in TERMINAL, answer
    assert agent.record(job_id) is not None, f"job {job_id} accepted but never recorded"


def _fuzz_payloads(agent: FuzzedAgent, payload: Any) -> None:
    status, body = agent.post(raw_json(payload))
    _assert_answer(status, body)
    if "status" not in body:
        return
    # Only a well-formed request gets a job answer; it names a job (or none).
    assert "job_id" in body
    if body["status"] == "RUNNING" and isinstance(body["job_id"], str):
        _follow_to_end(agent, body["job_id"])


def _fuzz_bytes(agent: FuzzedAgent, raw: bytes) -> None:
    status, body = agent.post(raw)
    assert status in (200, 400), (status, body)
    if status == 200:
        _assert_answer(status, body)


def fuzz_settings(examples: int) -> settings:
    """Examples over HTTP take milliseconds each: no per-example deadline."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@fuzz_settings(150)
@given(payload=payloads)
@example(payload={"action": "submit", "kind": "synthetic", "input": {"seconds": float("1e308")}})
@example(payload={"action": "status", "job_id": "x" * 10_000})
@example(payload={"action": "submit", "kind": "data_report", "input": {"csv_uri": "s3://"}})
@example(payload={"prompt": "hello"})
@example(payload={"action": "status", "job_id": "\ud800"})
@example(payload={"prompt": "a lone \udfff surrogate"})
@example(payload={"action": "submit", "kind": "synthetic", "input": {}, "client_token": "\ud800"})
@example(payload={"action": "submit", "kind": "synthetic", "input": {"fail": "\ud800"}})
@example(payload={"action": "submit", "kind": "synthetic", "input": {"fail": "e" * 200_000}})
@example(
    payload={
        "action": "submit",
        "kind": "data_report",
        "input": {"csv_uri": "s3://bucket/inputs/" + "k" * 300_000},
    }
)
@example(
    payload={
        "action": "submit",
        "kind": "synthetic",
        "input": {"seconds": 0.1},
        "client_token": "t" * (limits.MAX_CLIENT_TOKEN_CHARS + 1),
    }
)
@example(payload={"action": "result", "job_id": "j" * (limits.MAX_JOB_ID_CHARS + 1)})
@example(payload={"action": "submit", "kind": "k" * (limits.MAX_KIND_CHARS + 1), "input": {}})
@example(
    payload={
        "action": "submit",
        "kind": "synthetic",
        "input": {"seconds": 0.1, "fail": "x" * limits.MAX_INPUT_BYTES},
    }
)
def test_malformed_payloads_always_get_an_answer(agent: FuzzedAgent, payload: Any) -> None:
    _fuzz_payloads(agent, payload)


@fuzz_settings(50)
@given(raw=st.binary(max_size=200))
@example(raw=b"[" * 100_000 + b"]" * 100_000)
@example(raw=b"1" * 5_000)
@example(raw=b"\xff\xfe")
@example(raw=b"")
@example(raw=b'{"action": "status", "job_id": "\\ud800"}')
@example(raw=b'{"prompt": "\\udc00\\ud800"}')
@example(raw=b'{"prompt": "\xff\xfe"}')
def test_undecodable_bodies_get_400_never_5xx(agent: FuzzedAgent, raw: bytes) -> None:
    _fuzz_bytes(agent, raw)


@pytest.mark.slow
@fuzz_settings(2000)
@given(payload=payloads)
def test_many_malformed_payloads_always_get_an_answer(agent: FuzzedAgent, payload: Any) -> None:
    _fuzz_payloads(agent, payload)


@pytest.mark.slow
@fuzz_settings(500)
@given(raw=st.binary(max_size=2000))
def test_many_undecodable_bodies_get_400_never_5xx(agent: FuzzedAgent, raw: bytes) -> None:
    _fuzz_bytes(agent, raw)
