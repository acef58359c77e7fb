"""Start the real agent (`python agent_src/main.py`) on a free port and speak HTTP to it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import psutil

from emulator.ports import free_port
from emulator.resources import LocalResources
from testbed.aws import MotoEndpoint
from testbed.processes import VENV_BIN, running

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "LOST"})


def new_session_id() -> str:
    """A session id of the length AgentCore accepts (33 to 256 characters)."""
    return f"test-session-{uuid.uuid4().hex}"


def agent_env(moto: MotoEndpoint, resources: LocalResources, **extra: str) -> dict[str, str]:
    """The environment the agent reads: AWS on the moto server, the table and bucket, and the
    offline scripted model for the `agent` kind (JOBAGENT_SCRIPTED_MODEL=1)."""
    return {
        **moto.env(),
        **resources.env(),
        "JOBAGENT_SCRIPTED_MODEL": "1",
        **extra,
    }


@dataclass
class AgentClient:
    """HTTP to one running agent process; every call uses `session_id` unless told otherwise."""

    url: str
    proc: Popen[bytes]
    session_id: str = field(default_factory=new_session_id)

    def post(
        self, body: bytes, session_id: str | None = None, timeout_s: float = 30.0
    ) -> tuple[int, Any]:
        """POST raw bytes to /invocations: the HTTP status and the decoded JSON body."""
        headers = {"Content-Type": "application/json"}
        sid = self.session_id if session_id is None else session_id
        if sid:
            headers[SESSION_HEADER] = sid
        request = urllib.request.Request(f"{self.url}/invocations", data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def invoke(self, payload: Any, session_id: str | None = None) -> dict[str, Any]:
        """Send a JSON payload; the answer, which must come with HTTP 200."""
        status, answer = self.post(json.dumps(payload).encode(), session_id)
        assert status == 200, (status, answer)
        assert isinstance(answer, dict), answer
        return answer

    def submit(self, kind: str, job_input: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """Submit a job of `kind`; the agent's answer."""
        return self.invoke({"action": "submit", "kind": kind, "input": job_input, **fields})

    def ping(self) -> str:
        """The /ping status: Healthy or HealthyBusy."""
        with urllib.request.urlopen(f"{self.url}/ping", timeout=10) as answer:
            return str(json.loads(answer.read())["status"])

    def wait_for_end(self, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Ask for the result until the job reaches a terminal status; its answer."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = self.invoke({"action": "result", "job_id": job_id})
            if answer.get("status") in TERMINAL:
                return answer
            time.sleep(0.05)
        raise TimeoutError(f"job {job_id} did not end within {timeout_s} s")

    def wait_for_ping(self, status: str, timeout_s: float = 30.0) -> None:
        """Wait until /ping reports `status`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ping() == status:
                return
            time.sleep(0.05)
        raise TimeoutError(f"/ping did not report {status} within {timeout_s} s")


@contextmanager
def running_agent(env: dict[str, str], log_path: Path | None = None) -> Iterator[AgentClient]:
    """The agent as its deployers run it, from the repository root, on a free port;
    stopped (SIGTERM to its process group, then SIGKILL) when the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        [str(VENV_BIN / "python"), "agent_src/main.py"],
        ready_url=f"{url}/ping",
        env={**env, "PORT": str(port)},
        log_path=log_path,
    ) as proc:
        yield AgentClient(url=url, proc=proc)


def job_processes(client: AgentClient, timeout_s: float = 15.0) -> list[psutil.Process]:
    """The agent's job child processes, waiting until at least one has started."""
    server = psutil.Process(client.proc.pid)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [
            p for p in server.children(recursive=True) if "spawn_main" in " ".join(p.cmdline())
        ]
        if found:
            return found
        time.sleep(0.02)
    raise TimeoutError(f"no job process started within {timeout_s} s")
