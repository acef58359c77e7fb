"""Malformed payloads thrown at the real agent: never a 5xx, never a crash, always an answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emulator.resources import LocalResources
from tests.support.agent import AgentClient, agent_env, running_agent
from tests.support.aws import MotoEndpoint

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
    | st.text(max_size=30)
    | st.sampled_from(WORDS)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
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


@pytest.fixture(scope="module")
def agent(moto: MotoEndpoint) -> Iterator[AgentClient]:
    resources: LocalResources = moto.create_resources()
    env = agent_env(moto, resources)
    # No model: a payload that happens to be a valid prompt is refused, not run.
    del env["JOBAGENT_SCRIPTED_MODEL"]
    with running_agent(env) as client:
        yield client


def _assert_answer(status: int, body: Any) -> None:
    assert status == 200, (status, body)
    assert isinstance(body, dict)
    assert "error" in body or "status" in body
    if "error" in body:
        error = body["error"]
        assert set(error) == {"code", "message"}
        assert error["code"].isupper()
        assert error["message"]
        assert "Traceback" not in error["message"]
        assert "/" not in error["code"]


def _fuzz_payloads(agent: AgentClient, payload: Any) -> None:
    status, body = agent.post(json.dumps(payload).encode())
    _assert_answer(status, body)
    if "status" not in body:
        return
    # Only a well-formed request gets a job answer; it names a job (or none).
    assert "job_id" in body


def _fuzz_bytes(agent: AgentClient, raw: bytes) -> None:
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
def test_malformed_payloads_always_get_an_answer(agent: AgentClient, payload: Any) -> None:
    _fuzz_payloads(agent, payload)


@fuzz_settings(50)
@given(raw=st.binary(max_size=200))
@example(raw=b"[" * 100_000 + b"]" * 100_000)
@example(raw=b"1" * 5_000)
@example(raw=b"\xff\xfe")
@example(raw=b"")
def test_undecodable_bodies_get_400_never_5xx(agent: AgentClient, raw: bytes) -> None:
    _fuzz_bytes(agent, raw)


@pytest.mark.slow
@fuzz_settings(2000)
@given(payload=payloads)
def test_many_malformed_payloads_always_get_an_answer(agent: AgentClient, payload: Any) -> None:
    _fuzz_payloads(agent, payload)


@pytest.mark.slow
@fuzz_settings(500)
@given(raw=st.binary(max_size=2000))
def test_many_undecodable_bodies_get_400_never_5xx(agent: AgentClient, raw: bytes) -> None:
    _fuzz_bytes(agent, raw)
