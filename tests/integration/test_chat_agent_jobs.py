"""An existing chat agent keeps its entrypoint and starts jobs from it and from a Strands tool;
those jobs are recorded, collected and notified like any other (tests/agents/chat_agent.py)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentjobs.cli.inbox import unwrap
from testbed.local_stack import LocalStack, local_stack
from testbed.processes import REPO, VENV_BIN
from tests.support.cli import InProcessCli
from tests.support.stack_waits import poller_done_with

CHAT_AGENT = REPO / "tests" / "agents" / "chat_agent.py"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(
        tmp_path_factory.mktemp("chat-stack"),
        poller_interval_s=1,
        fastpath=True,
        AGENTCORE_AGENT_CMD=f"{VENV_BIN / 'python'} {CHAT_AGENT}",
    ) as running_stack:
        yield running_stack


def _session() -> str:
    return f"chat-agent-test-{uuid.uuid4().hex}"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    # The console script's entry point in this process: what these tests drive is the chat
    # agent on the stack, and an interpreter start per command costs about half a CPU-second.
    return InProcessCli(monkeypatch, capsys)


def _finished(cli: InProcessCli, stack: LocalStack, job_id: str) -> dict[str, Any]:
    env_file = str(stack.state_dir / "env")
    cli("wait", job_id, "--timeout", "60", "--interval", "0.2", "--local-env", env_file)
    result = cli("result", job_id, "--json", "--local-env", env_file)
    assert result.code == 0, str(result)
    answer = json.loads(result.stdout)
    assert isinstance(answer, dict)
    return answer


def _notified(stack: LocalStack, job_id: str, timeout_s: float = 60) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    queue_url = stack.values()["INBOX_QUEUE_URL"]
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    settled = False
    while time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0 if settled else 1
        ).get("Messages", []):
            found.append(unwrap(message["Body"])[0])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if settled:
            break
        if any(n["job_id"] == job_id for n in found):
            # A second notification could only come from a later pass: wait for one, then
            # take what the inbox holds once more.
            poller_done_with(stack, [job_id])
            settled = True
    return [n for n in found if n["job_id"] == job_id]


def test_other_payloads_still_reach_the_apps_own_entrypoint(stack: LocalStack) -> None:
    session = _session()
    answer = stack.invoke(session, {"message": "hello"})
    assert answer == {"reply": "you said: hello", "session_id": session}
    # Job requests go to the job protocol, even on an app with its own entrypoint.
    ping = stack.invoke(session, {"method": "ping"})
    assert ping["status"] in {"Healthy", "HealthyBusy"} and ping["jobs"] == []


def test_a_job_started_from_the_entrypoint_is_collected_and_notified(
    cli: InProcessCli, stack: LocalStack
) -> None:
    session = _session()
    answer = stack.invoke(session, {"message": "digest tide tables"})
    job = answer["job"]
    assert job["status"] == "RUNNING" and job["kind"] == "digest"
    # Started in the invocation's session: the poller collects it by invoking that session.
    assert job["session_id"] == session
    status = stack.invoke(session, {"action": "status", "job_id": job["job_id"]})
    assert status["job_id"] == job["job_id"] and status["status"] in {"RUNNING", "SUCCEEDED"}
    finished = _finished(cli, stack, job["job_id"])
    assert finished["status"] == "SUCCEEDED"
    assert finished["result"] == {"topic": "tide tables", "summary": "a digest of tide tables"}
    notes = _notified(stack, job["job_id"])
    assert [(n["status"], n["kind"], n["session_id"]) for n in notes] == [
        ("SUCCEEDED", "digest", session)
    ]


def test_a_job_started_from_a_strands_tool_is_collected_and_notified(
    cli: InProcessCli, stack: LocalStack
) -> None:
    session = _session()
    answer = stack.invoke(session, {"message": "tool coral reefs"})
    job = answer["job"]
    assert job["status"] == "RUNNING" and job["session_id"] == session
    assert job["job_id"] in answer["reply"]
    finished = _finished(cli, stack, job["job_id"])
    assert finished["status"] == "SUCCEEDED"
    assert finished["result"]["topic"] == "coral reefs"
    assert [n["status"] for n in _notified(stack, job["job_id"])] == ["SUCCEEDED"]


def test_start_job_refusals_come_back_as_answers(tmp_path: Path) -> None:
    # Bad input to start_job is answered, never raised: the entrypoint can pass it on.
    probe = (
        "import sys; sys.path.insert(0, 'tests/agents'); import chat_agent;"
        "print(__import__('json').dumps(chat_agent.app.start_job('digest', {'topic': 3})))"
    )
    out = subprocess.run(
        [str(VENV_BIN / "python"), "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": str(VENV_BIN), "HOME": str(tmp_path)},
    )
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["error"]["code"] == "INVALID_INPUT"
    assert "'input.topic'" in answer["error"]["message"]
