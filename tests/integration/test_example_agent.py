"""The research assistant example (examples/research_assistant), copied outside the repository
and run by the local stack (AGENTCORE_AGENT_CMD) with its scripted model, driven through raw
boto3 and the CLI: a chat turn starts the job through a tool, collected, notified once, read
back by the CLI and by re-invoking the session; cancel; no orphan after SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from emulator.ports import free_port
from testbed.inbox import drain_inbox
from testbed.local_runtime import agent_processes_of, job_processes
from testbed.local_stack import LocalStack, local_stack
from testbed.processes import REPO, VENV_BIN, all_gone, running
from tests.support.cli import CliRun, InProcessCli
from tests.support.stack_waits import poller_done_with

EXAMPLE = REPO / "examples" / "research_assistant"


@pytest.fixture(scope="module")
def agent_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Where a user keeps it: a folder of its own, nothing of the repository beside it.
    folder = tmp_path_factory.mktemp("user-folder") / "research_assistant"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    assert REPO not in folder.parents
    return folder / "agent.py"


@pytest.fixture(scope="module")
def stack(agent_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(
        tmp_path_factory.mktemp("example-stack"),
        poller_interval_s=1,
        fastpath=True,
        AGENTCORE_AGENT_CMD=f"{VENV_BIN / 'python'} {agent_file}",
        AGENTCORE_AGENT_CWD=str(agent_file.parent),
        JOBAGENT_SCRIPTED_MODEL="1",
    ) as running_stack:
        yield running_stack


@dataclass
class Inbox:
    """Every notification the stack's inbox received, kept across tests (draining one job's
    must not lose another's)."""

    stack: LocalStack
    seen: list[dict[str, Any]] = field(default_factory=list)

    def of(self, job_id: str, timeout_s: float = 60) -> list[dict[str, Any]]:
        """The notifications of `job_id`, once one has come and the poller is done with it."""
        sqs = self.stack.client("sqs")
        queue_url = self.stack.values()["INBOX_QUEUE_URL"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.seen.extend(note["document"] for note in drain_inbox(sqs, queue_url))
            if any(n["job_id"] == job_id for n in self.seen):
                # A second notification could only come from a later pass: wait for one.
                poller_done_with(self.stack, [job_id])
                self.seen.extend(note["document"] for note in drain_inbox(sqs, queue_url))
                break
            time.sleep(0.2)
        return [n for n in self.seen if n["job_id"] == job_id]


@pytest.fixture(scope="module")
def inbox(stack: LocalStack) -> Inbox:
    return Inbox(stack)


def _session() -> str:
    return f"research-chat-test-{uuid.uuid4().hex}"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    # The console script's entry point in this process: what these tests drive is the example
    # on the stack, and an interpreter start per command costs about half a CPU-second.
    return InProcessCli(monkeypatch, capsys)


def _cli(cli: InProcessCli, stack: LocalStack, *args: str) -> CliRun:
    return cli(*args, "--local-env", str(stack.state_dir / "env"))


def _wait(cli: InProcessCli, stack: LocalStack, job_id: str) -> dict[str, Any]:
    run = _cli(cli, stack, "wait", job_id, "--timeout", "60", "--interval", "0.2", "--json")
    assert "Traceback" not in run.stderr, str(run)
    record = run.json()
    assert isinstance(record, dict), str(run)
    return record


def _job_children(stack: LocalStack, timeout_s: float = 30) -> list[psutil.Process]:
    """The job child processes of the example's agent processes, once there is one."""
    runtime_pid = int(stack.values()["LOCAL_RUNTIME_PID"])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = job_processes(agent_processes_of(runtime_pid))
        if found:
            return found
        time.sleep(0.05)
    raise TimeoutError("no job child process started")


def test_a_chat_turn_starts_research_through_its_tool_and_the_job_is_collected(
    cli: InProcessCli, stack: LocalStack, inbox: Inbox
) -> None:
    session = _session()
    answer = stack.invoke(session, {"message": "research tide pools"})
    # The turn answered while the job runs: the tool started it and returned at once.
    [job] = answer["jobs"]
    assert job["status"] == "RUNNING" and job["kind"] == "research"
    assert job["session_id"] == session
    job_id = job["job_id"]
    assert job_id in answer["reply"] and answer["reply"].startswith("start_research answered")

    # Progress, read through the job protocol of the same session.
    deadline = time.monotonic() + 30
    progress: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = stack.invoke(session, {"action": "status", "job_id": job_id})
        progress = status["progress"]
        if status["status"] != "RUNNING" or progress["percent"] > 0:
            break
        time.sleep(0.1)
    assert 0 < progress["percent"] < 100, progress
    assert progress["message"].startswith(("reading source", "writing the brief")), progress

    done = _wait(cli, stack, job_id)
    assert done["status"] == "SUCCEEDED", done
    result = _cli(cli, stack, "result", job_id, "--json")
    assert result.code == 0, str(result)
    brief = result.json()["result"]
    assert brief["topic"] == "tide pools" and brief["model_id"] == "scripted-offline-model"
    assert [note["source"] for note in brief["notes"]] == [1, 2, 3]

    # The caller's own way back: invoke the same session again, after the poller stopped it.
    again = stack.invoke(session, {"action": "result", "job_id": job_id})
    assert again["status"] == "SUCCEEDED" and again["result"] == brief

    # The status tool reads the same job in a later chat turn.
    later = stack.invoke(session, {"message": f"how is {job_id} doing?"})
    assert later["jobs"] == [] and later["reply"].startswith("research_status answered")
    told = json.loads(later["reply"].split("answered: ", 1)[1])
    assert told["status"] == "SUCCEEDED" and told["result"] == brief

    notes = inbox.of(job_id)
    assert [(n["status"], n["kind"], n["session_id"]) for n in notes] == [
        ("SUCCEEDED", "research", session)
    ]


def test_the_status_tool_shows_another_sessions_job_as_unknown(stack: LocalStack) -> None:
    started = stack.invoke(_session(), {"message": "research kelp forests"})
    [job] = started["jobs"]
    answer = stack.invoke(_session(), {"message": f"status of {job['job_id']}"})
    told = json.loads(answer["reply"].split("answered: ", 1)[1])
    # The tool asks as the protocol's own `result` would: exactly the answer for a job nobody
    # knows, so another session learns nothing about the job.
    assert told["job_id"] == job["job_id"] and told["status"] == "UNKNOWN"
    assert told["error"]["code"] == "UNKNOWN_JOB" and "progress" not in told


def test_input_the_job_refuses_is_answered_and_starts_nothing(
    cli: InProcessCli, stack: LocalStack
) -> None:
    session = _session()
    answer = stack.invoke(session, {"message": "research " + "x" * 300})
    assert answer["jobs"] == []
    refusal = json.loads(answer["reply"].split("answered: ", 1)[1])
    assert refusal["error"]["code"] == "INVALID_INPUT" and "status" not in refusal
    assert "'input.topic'" in refusal["error"]["message"]
    assert stack.invoke(session, {"action": "status"})["status"] == "UNKNOWN"

    # The same model answers a submit from the CLI, naming each field.
    run = _cli(cli, stack, "submit", "research", "--set", "sources=99")
    assert run.code == 1 and "Traceback" not in run.stderr, str(run)
    assert "INVALID_INPUT" in run.stderr
    assert "'input.topic': Field required" in run.stderr
    assert "'input.sources'" in run.stderr

    other = stack.invoke(session, {"text": "hi"})
    assert other["error"]["code"] == "INVALID_REQUEST" and '{"message"' in other["error"]["message"]


def test_cancelling_research_ends_its_process_and_notifies_once(
    cli: InProcessCli, stack: LocalStack, agent_file: Path, inbox: Inbox
) -> None:
    run = _cli(
        cli,
        stack,
        "submit",
        "research",
        "--set",
        "topic=slow tides",
        "--set",
        "pause_s=30",
        "--json",
    )
    assert run.code == 0, str(run)
    job_id = run.json()["job_id"]
    children = _job_children(stack)
    cancel = _cli(cli, stack, "cancel", job_id)
    assert cancel.code == 0, str(cancel)
    assert all_gone(children)
    assert _wait(cli, stack, job_id)["status"] == "CANCELLED"
    assert [n["status"] for n in inbox.of(job_id)] == ["CANCELLED"]


def test_sigterm_leaves_no_orphan_of_the_example(stack: LocalStack, agent_file: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    values = stack.values()
    env = {
        **{k: v for k, v in values.items() if k.startswith("AWS_")},
        "JOBS_TABLE": values["JOBS_TABLE"],
        "RESULTS_BUCKET": values["RESULTS_BUCKET"],
        "JOBAGENT_SCRIPTED_MODEL": "1",
        "PORT": str(port),
        "AGENT_BIND_HOST": "127.0.0.1",
    }
    env.pop("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", None)
    with running(
        [str(VENV_BIN / "python"), str(agent_file)], ready_url=f"{url}/ping", env=env
    ) as proc:
        request = urllib.request.Request(
            f"{url}/invocations",
            data=json.dumps(
                {"action": "submit", "kind": "research", "input": {"topic": "x", "pause_s": 30}}
            ).encode(),
            headers={
                "Content-Type": "application/json",
                "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": _session(),
            },
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert json.loads(answer.read())["status"] == "RUNNING"
        server = psutil.Process(proc.pid)
        deadline = time.monotonic() + 30
        children: list[psutil.Process] = []
        while not children and time.monotonic() < deadline:
            children = [
                c for c in server.children(recursive=True) if "spawn_main" in " ".join(c.cmdline())
            ]
            time.sleep(0.05)
        assert children
        # Only the server gets the signal: its own shutdown must stop the job's process.
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        assert all_gone(children)
