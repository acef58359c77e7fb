"""Start the local AgentCore runtime as a real process for a test, and talk to it with boto3."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from botocore.config import Config

from emulator.agentcore.warm_start import ZYGOTE
from emulator.ports import free_port
from testbed.aws import shared_client
from testbed.processes import REPO, running

AGENTS = REPO / "tests" / "agents"
AGENT_CMD = f"{sys.executable} {REPO / 'agent_src' / 'main.py'}"
"""The command that runs the project's own agent, as the local stack does by default."""
RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/local_agent-AbCdE12345"


def agent_cmd(name: str) -> str:
    """The command that runs one of the tiny test agents in tests/agents/."""
    return f"{sys.executable} {AGENTS / name}.py"


def listed_sessions(runtime_url: str) -> dict[str, dict[str, Any]]:
    """The local runtime's `GET /sessions`, by session id."""
    with urllib.request.urlopen(f"{runtime_url}/sessions", timeout=10) as answer:
        listing = json.loads(answer.read())
    return {s["sessionId"]: s for s in listing["sessions"]}


def new_session_id() -> str:
    """A fresh session id of a valid length (boto3 refuses fewer than 33 characters)."""
    return f"test-session-{uuid.uuid4()}"


@dataclass
class RuntimeProcess:
    """A running local runtime: its URL, its process, and the agent processes seen under it."""

    url: str
    pid: int

    def client(self, *, attempts: int = 1, read_timeout_s: float = 60.0) -> Any:
        """A bedrock-agentcore client on this runtime; one attempt, so errors surface as-is."""
        return shared_client(
            "bedrock-agentcore",
            endpoint_url=self.url,
            config=Config(
                retries={"total_max_attempts": attempts, "mode": "standard"},
                read_timeout=read_timeout_s,
                max_pool_connections=50,
            ),
        )

    def invoke(self, session_id: str, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """InvokeAgentRuntime with a JSON payload; the JSON answer."""
        answer = self.client().invoke_agent_runtime(
            agentRuntimeArn=RUNTIME_ARN,
            runtimeSessionId=session_id,
            payload=json.dumps(payload).encode(),
            **kwargs,
        )
        return json.loads(answer["response"].read())  # type: ignore[no-any-return]

    def sessions(self) -> dict[str, dict[str, Any]]:
        """GET /sessions, by session id."""
        return listed_sessions(self.url)

    def agent_processes(self) -> list[psutil.Process]:
        """Every live process this runtime started (found by the emulator pid in its env)."""
        return agent_processes_of(self.pid)

    def session_processes(self, session_id: str) -> list[psutil.Process]:
        """The live processes of one session: its agent and what the agent started."""
        return session_processes(self.url, self.pid, session_id)


def agent_processes_of(emulator_pid: int) -> list[psutil.Process]:
    """Live processes whose environment names `emulator_pid` as their local runtime,
    wherever they are in the process tree (an orphan is found too); not the runtime's
    preloaded parent of warm starts, which is no agent. A warm-started agent shows its
    parent's environment and command line to other processes: ask `session_processes`
    which processes a session has."""
    marker = str(emulator_pid)
    found = []
    for process in psutil.process_iter():
        try:
            if (
                process.environ().get("AGENTCORE_EMULATOR_PID") == marker
                and process.status() != psutil.STATUS_ZOMBIE
                and not (process.ppid() == emulator_pid and str(ZYGOTE) in process.cmdline())
            ):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def job_processes(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Of these processes, the child processes that run `cpu` jobs (multiprocessing's spawn)."""
    found = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if any("spawn_main" in part for part in process.cmdline()):
                found.append(process)
    return found


def session_processes(runtime_url: str, emulator_pid: int, session_id: str) -> list[psutil.Process]:
    """The live processes of one session: its agent, which leads the session's process
    group (GET /sessions names it), and every process in that group."""
    leader = listed_sessions(runtime_url).get(session_id, {}).get("pid")
    if not leader:
        return []
    found = []
    for process in agent_processes_of(emulator_pid):
        with contextlib.suppress(OSError):
            if os.getpgid(process.pid) == leader:
                found.append(process)
    return found


@contextmanager
def local_runtime(
    agent: str | None = "echo_agent",
    *,
    agent_cmd_line: str | None = None,
    idle_timeout_s: float = 60,
    max_lifetime_s: float = 600,
    busy_policy: str = "accept",
    ping_interval_s: float = 0.5,
    startup_timeout_s: float = 20,
    stop_grace_s: float = 2,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    log_path: Path | None = None,
) -> Iterator[RuntimeProcess]:
    """`python -m emulator.agentcore` on a free port running `agent` (a tests/agents/ name)
    or `agent_cmd_line`; stopped when the block ends, and no agent process may survive it.

    `ping_interval_s` is how soon the runtime sees a session idle out or its agent exit. Each
    ping is CPU in the runtime and the agent for every live session: at 0.2 s the tests that
    use it most (six integration files) took 1.11 times the CPU they take at 0.5 s, the
    median of three pairs run in turn on an otherwise idle 2-core machine."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = agent_cmd_line or agent_cmd(agent or "echo_agent")
    cmd = [
        sys.executable,
        "-m",
        "emulator.agentcore",
        "--port",
        str(port),
        "--agent-cmd",
        command,
        "--idle-timeout-s",
        str(idle_timeout_s),
        "--max-lifetime-s",
        str(max_lifetime_s),
        "--busy-policy",
        busy_policy,
        "--ping-interval-s",
        str(ping_interval_s),
        "--startup-timeout-s",
        str(startup_timeout_s),
        "--stop-grace-s",
        str(stop_grace_s),
        *(extra_args or []),
    ]
    with running(cmd, ready_url=f"{url}/sessions", env=env, log_path=log_path) as proc:
        pid = proc.pid
        yield RuntimeProcess(url=url, pid=pid)
    survivors = agent_processes_of(pid)
    for process in survivors:  # never leave them behind, even when the check fails
        process.kill()
    assert not survivors, f"agent processes outlived the local runtime: {survivors}"
