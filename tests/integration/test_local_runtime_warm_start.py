"""Warm starts: an agent forked from the preloaded parent sees its process exactly as one
started cold does (argv, directory, sys.path, environment, process group, `__main__`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from emulator.agentcore.warm_start import ZYGOTE
from testbed.local_runtime import (
    RUNTIME_ARN,
    RuntimeProcess,
    agent_cmd,
    local_runtime,
    new_session_id,
)

# Differ by session or by runtime, however the agent was started.
PER_SESSION = {"PORT", "AGENTCORE_SESSION_PORT", "AGENTCORE_SESSION_ID", "AGENTCORE_EMULATOR_PID"}
COLD = ["--warm-start", "false"]


def report(runtime: RuntimeProcess) -> dict[str, Any]:
    session_id = new_session_id()
    seen = runtime.invoke(session_id, {})
    assert seen["env"]["AGENTCORE_SESSION_ID"] == session_id
    assert seen["env"]["AGENTCORE_EMULATOR_PID"] == str(runtime.pid)
    assert seen["pid"] == runtime.sessions()[session_id]["pid"]
    return seen


def comparable(seen: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in seen["env"].items() if k not in PER_SESSION}
    kept = {k: v for k, v in seen.items() if k not in ("pid", "process_group", "unix_session")}
    return {**kept, "env": env}


def test_a_warm_start_is_a_cold_start_to_the_agent(tmp_path: Path) -> None:
    command = f"{agent_cmd('self_report_agent')} --some-flag value"
    logs = {"warm": tmp_path / "warm", "cold": tmp_path / "cold"}
    with (
        local_runtime(
            agent_cmd_line=command,
            extra_args=["--agent-log-dir", str(logs["warm"])],
            log_path=tmp_path / "warm-runtime.log",
        ) as warm,
        local_runtime(
            agent_cmd_line=command, extra_args=[*COLD, "--agent-log-dir", str(logs["cold"])]
        ) as cold,
    ):
        warm_seen, cold_seen = report(warm), report(cold)
        # Forked by the zygote, or started by the runtime itself.
        assert str(ZYGOTE) in psutil.Process(warm_seen["pid"]).parent().cmdline()
        assert psutil.Process(cold_seen["pid"]).ppid() == cold.pid
        # Another session of the warm runtime is a new process with the agent's modules
        # imported afresh.
        again = report(warm)
        assert again["pid"] != warm_seen["pid"]
    assert comparable(warm_seen) == comparable(cold_seen) == comparable(again)
    for seen in (warm_seen, cold_seen):
        assert seen["name"] == "__main__"
        assert seen["argv"][1:] == ["--some-flag", "value"]
        assert seen["pid"] == seen["process_group"] == seen["unix_session"]
        assert seen["stdin_is_devnull"] and seen["sdk_loaded"]
        # Made from the botocore data the warm parent parsed, or parsed afresh: one client.
        assert seen["dynamodb_client"]["endpoint"] == "https://dynamodb.eu-west-1.amazonaws.com"
    preloaded = (tmp_path / "warm-runtime.log").read_text()
    assert "warm starts ready: preloaded bedrock_agentcore" in preloaded
    assert "botocore data" in preloaded
    written = {name: sorted(folder.glob("*.log")) for name, folder in logs.items()}
    assert [len(files) for files in written.values()] == [2, 1]
    for log_file in (*written["warm"], *written["cold"]):
        assert "self_report_agent: started as __main__" in log_file.read_text()


@pytest.mark.parametrize(
    ("what", "expected"),
    [("script", "exited with code 2"), ("directory", "cannot run the agent command")],
)
def test_an_agent_that_cannot_start_fails_alike_warm_or_cold(
    tmp_path: Path, what: str, expected: str
) -> None:
    missing = tmp_path / "gone"
    command = f"{sys.executable} {missing / 'agent.py'}"
    extra = ["--agent-cwd", str(missing)] if what == "directory" else []
    messages = []
    for start in ([], COLD):
        with local_runtime(
            agent_cmd_line=command, extra_args=[*extra, *start], startup_timeout_s=10
        ) as runtime:
            client = runtime.client()
            with pytest.raises(client.exceptions.RuntimeClientError) as caught:
                client.invoke_agent_runtime(
                    agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=new_session_id(), payload=b"{}"
                )
            messages.append(caught.value.response["Error"]["Message"])
    assert messages[0] == messages[1]
    assert expected in messages[0]
