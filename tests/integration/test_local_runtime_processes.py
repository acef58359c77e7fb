"""Agent processes under the local runtime: many at once, quotas, logs, none left after it stops."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from testbed.local_runtime import (
    RUNTIME_ARN,
    agent_processes_of,
    local_runtime,
    new_session_id,
)

GIVE_UP_S = 60.0


def wait_until_exited(pid: int) -> None:
    """Wait for the process to end (a safety net, never a timing assertion)."""
    try:
        psutil.Process(pid).wait(timeout=GIVE_UP_S)
    except psutil.NoSuchProcess:
        return


def wait_until_no_agents(emulator_pid: int) -> None:
    deadline = time.monotonic() + GIVE_UP_S
    while agent_processes_of(emulator_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert agent_processes_of(emulator_pid) == []


# Each session is an agent process (about half a CPU-second to start): `make test` starts
# six at once, enough for every start to overlap the others' and race for ports; the slow
# run starts twenty.
@pytest.mark.parametrize(
    "count", [pytest.param(6, id="six"), pytest.param(20, id="twenty", marks=pytest.mark.slow)]
)
def test_sessions_started_at_once_each_get_their_own_process(count: int) -> None:
    with local_runtime("echo_agent", startup_timeout_s=60) as runtime:
        client = runtime.client()
        sessions = [new_session_id() for _ in range(count)]

        def invoke(session_id: str) -> dict[str, object]:
            answer = client.invoke_agent_runtime(
                agentRuntimeArn=RUNTIME_ARN,
                runtimeSessionId=session_id,
                payload=json.dumps({"session": session_id}).encode(),
            )
            return json.loads(answer["response"].read())  # type: ignore[no-any-return]

        with ThreadPoolExecutor(count) as pool:
            answers = list(pool.map(invoke, sessions))
        assert [a["session_id"] for a in answers] == sessions
        assert len({a["pid"] for a in answers}) == count
        listed = runtime.sessions()
        assert len({listed[s]["agentUrl"] for s in sessions}) == count
        assert len(runtime.agent_processes()) == count


@pytest.mark.parametrize(
    "signum",
    [
        pytest.param(signal.SIGTERM, id="SIGTERM"),
        pytest.param(signal.SIGINT, id="SIGINT", marks=pytest.mark.slow),  # same path as SIGTERM
    ],
)
def test_stopping_the_runtime_stops_every_agent(signum: signal.Signals) -> None:
    with local_runtime("busy_agent") as runtime:
        for busy_s in (0, 30, 30):
            runtime.invoke(new_session_id(), {"busy_s": busy_s})
        assert len(runtime.agent_processes()) == 3
        os.kill(runtime.pid, signum)  # the runtime alone: agents have their own groups
        wait_until_exited(runtime.pid)
        assert agent_processes_of(runtime.pid) == []


@pytest.mark.slow
def test_agents_end_themselves_when_the_runtime_is_killed() -> None:
    with local_runtime("echo_agent") as runtime:
        for _ in range(2):
            runtime.invoke(new_session_id(), {})
        assert len(runtime.agent_processes()) == 2
        os.kill(runtime.pid, signal.SIGKILL)  # no chance to stop them
        wait_until_exited(runtime.pid)
        wait_until_no_agents(runtime.pid)


def test_sessions_beyond_the_local_quota_are_service_quota_exceeded() -> None:
    with local_runtime("echo_agent", extra_args=["--max-sessions", "1"]) as runtime:
        client = runtime.client()
        first = new_session_id()
        runtime.invoke(first, {})
        with pytest.raises(client.exceptions.ServiceQuotaExceededException):
            client.invoke_agent_runtime(
                agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=new_session_id(), payload=b"{}"
            )
        client.stop_runtime_session(agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=first)
        assert runtime.invoke(new_session_id(), {"n": 1})["echo"] == {"n": 1}


def test_agent_output_goes_to_one_log_per_session(tmp_path: Path) -> None:
    with local_runtime(
        "crash_agent", extra_args=["--agent-log-dir", str(tmp_path)], startup_timeout_s=10
    ) as runtime:
        client = runtime.client()
        session_id = new_session_id()
        with pytest.raises(client.exceptions.RuntimeClientError):
            client.invoke_agent_runtime(
                agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id, payload=b"{}"
            )
    assert "failing at start on purpose" in (tmp_path / f"{session_id}.log").read_text()


def test_settings_come_from_the_environment_when_no_flag_is_given() -> None:
    with local_runtime(
        "echo_agent",
        extra_args=[],
        env={"AGENTCORE_MAX_SESSIONS": "1"},
    ) as runtime:
        client = runtime.client()
        runtime.invoke(new_session_id(), {})
        with pytest.raises(client.exceptions.ServiceQuotaExceededException):
            client.invoke_agent_runtime(
                agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=new_session_id(), payload=b"{}"
            )
