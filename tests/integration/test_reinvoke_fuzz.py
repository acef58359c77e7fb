"""Malformed job ids and methods thrown at an agent that answers from its stores: never a 5xx,
never a traceback, always an answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emulator.resources import LocalResources
from testbed.agent import AgentClient, agent_env, running_agent
from testbed.aws import MotoEndpoint

hexish = st.text(alphabet="0123456789abcdefABCDEF-", min_size=30, max_size=34)
texts = st.text(max_size=40) | hexish | st.sampled_from(["", " ", "0" * 32, "ping", "null"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
queries = st.fixed_dictionaries(
    {"action": st.sampled_from(["status", "result", "cancel"])}, optional={"job_id": values}
)
pings = st.fixed_dictionaries(
    {"method": st.sampled_from(["ping", "Ping", "pong", ""]) | values},
    optional={"payload": values, "job_id": values, "action": st.none()},
)


@pytest.fixture(scope="module")
def agent(moto: MotoEndpoint) -> Iterator[AgentClient]:
    resources: LocalResources = moto.create_resources()
    with running_agent(agent_env(moto, resources)) as client:
        yield client


def _assert_answer(agent: AgentClient, body: bytes) -> None:
    status, answer = agent.post(body)
    assert status == 200, (status, answer)
    assert isinstance(answer, dict)
    assert "status" in answer or "error" in answer
    text = json.dumps(answer)
    assert "Traceback" not in text and 'File \\"' not in text
    if "error" in answer:
        assert set(answer["error"]) == {"code", "message"}
        assert answer["error"]["code"].isupper() and answer["error"]["message"]
    if answer.get("status") == "UNKNOWN":
        assert answer["error"]["code"] == "UNKNOWN_JOB"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=queries | pings)
@example(payload={"action": "result", "job_id": "0" * 32})
@example(payload={"action": "status", "job_id": "0" * 31 + "G"})
@example(payload={"method": "ping", "payload": {"job_id": ["x"]}})
def test_malformed_job_ids_and_methods_always_get_an_answer(
    agent: AgentClient, payload: Any
) -> None:
    _assert_answer(agent, json.dumps(payload).encode())


@pytest.mark.parametrize(
    "body",
    [
        b'{"action": "result", "job_id": "\\ud800"}',
        b'{"method": "\\udfff"}',
        b'{"method": "ping", "payload": {"\\ud800": 1}}',
    ],
    ids=["surrogate job id", "surrogate method", "surrogate in a ping payload"],
)
def test_lone_surrogates_get_an_answer(agent: AgentClient, body: bytes) -> None:
    _assert_answer(agent, body)
