"""Session lifecycle of the local runtime: idle, HealthyBusy, max lifetime, health, busy policy."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from testbed.local_runtime import (
    RUNTIME_ARN,
    RuntimeProcess,
    agent_cmd,
    local_runtime,
    new_session_id,
)

# A safety net for the polling loops below, never an assertion about timing.
GIVE_UP_S = 60.0


def wait_for(check: Callable[[], Any], what: str) -> Any:
    """Poll `check` until it returns something truthy; fail after GIVE_UP_S."""
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


def session_as(agent: str) -> str:
    """A session id that makes tests/agents/by_session.py run `agent`."""
    return f"test-as-{agent}-{uuid.uuid4()}"


# Tests that need the same runtime settings share one runtime (a session id picks its agent):
# each test has sessions of its own and asserts only on them.
@pytest.fixture(scope="module")
def quick_idle() -> Iterator[RuntimeProcess]:
    """A runtime whose idle sessions are stopped after 1 s."""
    with local_runtime(agent_cmd_line=agent_cmd("by_session"), idle_timeout_s=1) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def accepting() -> Iterator[RuntimeProcess]:
    """A runtime with the default settings: accepting calls to busy sessions, 60 s idle."""
    with local_runtime(agent_cmd_line=agent_cmd("by_session"), idle_timeout_s=60) as runtime:
        yield runtime


def process_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_idle_session_is_stopped_after_the_idle_timeout(quick_idle: RuntimeProcess) -> None:
    runtime = quick_idle
    session_id = new_session_id()
    pid = runtime.invoke(session_id, {})["pid"]
    assert runtime.sessions()[session_id]["state"] == "Idle"
    wait_for(lambda: runtime.sessions()[session_id]["state"] == "Stopped", "idle stop")
    assert process_gone(pid)
    # Invoking a stopped session is not an error: a fresh process, its memory gone.
    again = runtime.invoke(session_id, {})
    assert again["pid"] != pid
    assert again["calls"] == 1


def test_healthy_busy_session_outlives_the_idle_timeout(quick_idle: RuntimeProcess) -> None:
    runtime = quick_idle
    session_id = session_as("busy_agent")
    pid = runtime.invoke(session_id, {"busy_s": 2})["pid"]
    # The listing may lag the agent by one ping period: wait to see HealthyBusy first.
    wait_for(lambda: runtime.sessions()[session_id]["ping"] == "HealthyBusy", "HealthyBusy")
    samples: list[dict[str, Any]] = []

    def busy_over() -> bool:
        listed = runtime.sessions()[session_id]
        samples.append(listed)
        return listed["ping"] == "Healthy"

    wait_for(busy_over, "the busy task to end")
    busy = [s for s in samples if s["ping"] == "HealthyBusy"]
    # Busy for 2 s against an idle timeout of 1 s, and never stopped meanwhile.
    assert all(s["state"] == "Active" for s in busy)
    assert not process_gone(pid)
    # Healthy again with nothing in flight: now the idle timeout applies.
    wait_for(lambda: runtime.sessions()[session_id]["state"] == "Stopped", "idle stop")
    assert process_gone(pid)


def test_max_lifetime_ends_even_a_busy_session() -> None:
    with local_runtime("busy_agent", idle_timeout_s=60, max_lifetime_s=2) as runtime:
        session_id = new_session_id()
        pid = runtime.invoke(session_id, {"busy_s": 120})["pid"]
        wait_for(lambda: runtime.sessions()[session_id]["state"] == "Stopped", "max lifetime")
        assert process_gone(pid)


def test_accept_policy_lets_a_busy_session_answer(accepting: RuntimeProcess) -> None:
    runtime = accepting
    session_id = session_as("busy_agent")
    first = runtime.invoke(session_id, {"busy_s": 30})
    wait_for(lambda: runtime.sessions()[session_id]["ping"] == "HealthyBusy", "HealthyBusy")
    second = runtime.invoke(session_id, {"busy_s": 0})
    assert second["pid"] == first["pid"]


def test_reject_policy_refuses_a_busy_session_until_it_is_healthy() -> None:
    with local_runtime("busy_agent", busy_policy="reject") as runtime:
        session_id = new_session_id()
        client = runtime.client()
        runtime.invoke(session_id, {"busy_s": 1})
        # No wait for a poll: the runtime asks the agent's /ping before deciding.
        with pytest.raises(client.exceptions.RetryableConflictException) as caught:
            client.invoke_agent_runtime(
                agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id, payload=b"{}"
            )
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
        wait_for(lambda: runtime.sessions()[session_id]["ping"] == "Healthy", "Healthy")
        assert runtime.invoke(session_id, {"busy_s": 0})["busy_s"] == 0


def test_agent_that_dies_ends_its_session(accepting: RuntimeProcess) -> None:
    runtime = accepting
    session_id = new_session_id()
    pid = runtime.invoke(session_id, {})["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: runtime.sessions()[session_id]["state"] == "Stopped", "stop")
    assert runtime.invoke(session_id, {})["pid"] != pid


def test_agent_failing_its_health_check_is_stopped() -> None:
    with local_runtime(
        "echo_agent", ping_interval_s=0.2, stop_grace_s=0.5, extra_args=["--ping-failures", "2"]
    ) as runtime:
        session_id = new_session_id()
        pid = runtime.invoke(session_id, {})["pid"]
        os.kill(pid, signal.SIGSTOP)  # alive, but /ping no longer answers
        try:
            wait_for(lambda: runtime.sessions()[session_id]["state"] == "Stopped", "stop")
            wait_for(lambda: process_gone(pid), "the frozen agent to be killed")
        finally:
            if not process_gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_sessions_listing_follows_the_lifecycle(accepting: RuntimeProcess) -> None:
    runtime = accepting
    session_id = session_as("busy_agent")
    runtime.invoke(session_id, {"busy_s": 30})
    listed = wait_for(
        lambda: (s := runtime.sessions()[session_id])["ping"] == "HealthyBusy" and s,
        "HealthyBusy",
    )
    assert listed["state"] == "Active"
    runtime.client().stop_runtime_session(agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id)
    assert runtime.sessions()[session_id]["state"] == "Stopped"
    assert json.loads(json.dumps(runtime.sessions()))  # plain JSON all the way
