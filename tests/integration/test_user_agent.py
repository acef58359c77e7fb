"""A user's own agent, written only against agentjobs.agent in a folder outside the repository,
run by the local stack (AGENTCORE_AGENT_CMD) and driven through raw boto3 and the CLI."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from agentjobs.cli.inbox import unwrap
from emulator.ports import free_port
from testbed.local_runtime import agent_processes_of, job_processes
from testbed.local_stack import LocalStack, local_stack
from testbed.processes import REPO, VENV_BIN, all_gone, running
from tests.support.cli import CliRun, InProcessCli
from tests.support.stack_waits import poller_done_with

USER_AGENT = '''
"""A user's agent: nothing but the public job API."""

from pydantic import BaseModel, Field

from agentjobs.agent import JobApp, JobContext, JobFailed


class Count(BaseModel):
    to: int = Field(ge=1, le=1000)
    label: str


app = JobApp(default_job="count")


@app.job("count")
def count(params: Count, ctx: JobContext) -> dict:
    for done in range(1, params.to + 1):
        ctx.sleep(0.1)
        ctx.progress(100 * done / params.to, f"counted {done} of {params.to}")
    return {"label": params.label, "counted": params.to, "job_id": ctx.job_id}


@app.job("refuse")
def refuse(params: dict) -> dict:
    raise JobFailed("the ledger is closed on Sundays")


@app.job("explode")
def explode(params: dict, ctx: JobContext) -> dict:
    password = "hunter2-db-password"
    raise RuntimeError(f"could not connect to db://admin:{password}@10.0.0.7")


@app.job("opaque")
def opaque(params: dict) -> object:
    return {"a set": {1, 2}}


@app.job("crunch", cpu=True)
def crunch(params: dict, ctx: JobContext) -> dict:
    ctx.progress(1, "crunching")
    total = 0
    while True:
        total = (total * 31 + 7) % 1_000_003


if __name__ == "__main__":
    app.run()
'''

LEAKS = ("hunter2", "RuntimeError", "db://", "10.0.0.7", "Traceback")


@pytest.fixture(scope="module")
def agent_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user-agent")
    assert REPO not in folder.parents
    path = folder / "ledger_agent.py"
    path.write_text(textwrap.dedent(USER_AGENT).lstrip())
    return path


@pytest.fixture(scope="module")
def stack(agent_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(
        tmp_path_factory.mktemp("stack"),
        poller_interval_s=1,
        fastpath=True,
        AGENTCORE_AGENT_CMD=f"{VENV_BIN / 'python'} {agent_file}",
        AGENTCORE_AGENT_CWD=str(agent_file.parent),
    ) as running_stack:
        yield running_stack


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    # The console script's entry point in this process: what these tests drive is the user's
    # agent on the stack, and an interpreter start per command costs about half a CPU-second.
    return InProcessCli(monkeypatch, capsys)


def _cli(cli: InProcessCli, stack: LocalStack, *args: str) -> CliRun:
    return cli(*args, "--local-env", str(stack.state_dir / "env"))


def _session() -> str:
    return f"user-agent-test-{uuid.uuid4().hex}"


def _wait(cli: InProcessCli, stack: LocalStack, job_id: str) -> dict[str, Any]:
    run = _cli(cli, stack, "wait", job_id, "--timeout", "60", "--interval", "0.2", "--json")
    assert "Traceback" not in run.stderr, str(run)
    record = json.loads(run.stdout)
    assert isinstance(record, dict), str(run)
    return record


def _notifications(stack: LocalStack, job_ids: set[str], timeout_s: float = 60) -> list[Any]:
    sqs = stack.client("sqs")
    queue_url = stack.values()["INBOX_QUEUE_URL"]
    found: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not job_ids <= {n["job_id"] for n in found}:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for message in messages:
            document, envelope = unwrap(message["Body"])
            found.append(
                {
                    **document,
                    "subject": envelope.get("Subject", ""),
                }
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    # A second notification of a job would come from a later pass of the poller.
    poller_done_with(stack, job_ids)
    for message in sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    ).get("Messages", []):
        found.append(unwrap(message["Body"])[0])
    return [n for n in found if n["job_id"] in job_ids]


def _wait_for_children(stack: LocalStack, timeout_s: float = 20) -> list[psutil.Process]:
    """The processes of the user agent's `cpu` jobs, once there is one."""
    runtime_pid = int(stack.values()["LOCAL_RUNTIME_PID"])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        children = job_processes(agent_processes_of(runtime_pid))
        if children:
            return children
        time.sleep(0.05)
    raise TimeoutError("no job child process started")


def test_a_user_agent_runs_its_jobs_on_the_local_stack(
    cli: InProcessCli, stack: LocalStack
) -> None:
    # Success with progress, through raw boto3.
    session = _session()
    submitted = stack.invoke(
        session, {"action": "submit", "kind": "count", "input": {"to": 30, "label": "x"}}
    )
    assert submitted["status"] == "RUNNING" and submitted["kind"] == "count"
    counted = submitted["job_id"]
    deadline = time.monotonic() + 30
    progress: dict[str, Any] = {}
    while time.monotonic() < deadline:
        progress = stack.invoke(session, {"action": "status", "job_id": counted})["progress"]
        if 0 < progress["percent"] < 100:
            break
        time.sleep(0.1)
    assert 0 < progress["percent"] < 100 and progress["message"].startswith("counted ")

    # A job the model refuses starts nothing and names each field.
    refused = stack.invoke(
        _session(), {"action": "submit", "kind": "count", "input": {"to": "many"}}
    )
    assert refused["error"]["code"] == "INVALID_INPUT" and "status" not in refused
    assert "'input.to'" in refused["error"]["message"]
    assert "'input.label': Field required" in refused["error"]["message"]

    # An unknown kind is answered with the jobs this agent has.
    unknown = stack.invoke(_session(), {"action": "submit", "kind": "poem"})
    assert unknown["error"]["code"] == "UNKNOWN_KIND"
    assert "count, crunch, explode, opaque, refuse" in unknown["error"]["message"]

    # The CLI: JobFailed, an unexpected exception, a result JSON cannot carry.
    ids = {}
    for kind in ("refuse", "explode", "opaque"):
        run = _cli(cli, stack, "submit", kind, "--json")
        assert run.code == 0, str(run)
        ids[kind] = run.json()["job_id"]

    done = _wait(cli, stack, counted)
    assert done["status"] == "SUCCEEDED", done
    result = _cli(cli, stack, "result", counted, "--json")
    assert result.code == 0, str(result)
    assert json.loads(result.stdout)["result"] == {"label": "x", "counted": 30, "job_id": counted}

    failed = _wait(cli, stack, ids["refuse"])
    assert failed["status"] == "FAILED"
    assert failed["error"] == {"code": "JOB_FAILED", "message": "the ledger is closed on Sundays"}

    crashed = _wait(cli, stack, ids["explode"])
    assert crashed["status"] == "FAILED" and crashed["error"]["code"] == "JOB_CRASHED"
    shown = json.dumps(crashed) + _cli(cli, stack, "result", ids["explode"]).stdout
    assert not [leak for leak in LEAKS if leak in shown], shown

    opaque = _wait(cli, stack, ids["opaque"])
    assert opaque["status"] == "FAILED" and opaque["error"]["code"] == "RESULT_NOT_JSON"
    assert "JSON" in opaque["error"]["message"]

    # Kinds are open strings in the CLI's filter too.
    listed = _cli(cli, stack, "list", "--kind", "refuse", "--json")
    assert [job["job_id"] for job in listed.json()["jobs"]] == [ids["refuse"]], str(listed)

    # One notification for each job, naming its kind, leaking nothing.
    all_ids = {counted, *ids.values()}
    notes = _notifications(stack, all_ids)
    assert sorted(n["job_id"] for n in notes) == sorted(all_ids)
    assert {n["job_id"]: n["kind"] for n in notes} == {
        counted: "count",
        ids["refuse"]: "refuse",
        ids["explode"]: "explode",
        ids["opaque"]: "opaque",
    }
    assert not [leak for leak in LEAKS if leak in json.dumps(notes)]


def test_cancelling_a_cpu_job_of_a_user_agent_ends_its_process(
    cli: InProcessCli, stack: LocalStack, agent_file: Path
) -> None:
    run = _cli(cli, stack, "submit", "crunch", "--json")
    assert run.code == 0, str(run)
    job_id = run.json()["job_id"]
    children = _wait_for_children(stack)
    cancel = _cli(cli, stack, "cancel", job_id)
    assert cancel.code == 0, str(cancel)
    assert all_gone(children)
    assert _wait(cli, stack, job_id)["status"] == "CANCELLED"
    notes = _notifications(stack, {job_id})
    assert [(n["job_id"], n["status"]) for n in notes] == [(job_id, "CANCELLED")]


def test_sigterm_leaves_no_orphan_of_a_user_agent(stack: LocalStack, agent_file: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    values = stack.values()
    env = {
        **{k: v for k, v in values.items() if k.startswith("AWS_")},
        "JOBS_TABLE": values["JOBS_TABLE"],
        "RESULTS_BUCKET": values["RESULTS_BUCKET"],
        "PORT": str(port),
        "AGENT_BIND_HOST": "127.0.0.1",
    }
    env.pop("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", None)
    with running(
        [str(VENV_BIN / "python"), str(agent_file)], ready_url=f"{url}/ping", env=env
    ) as proc:
        request = urllib.request.Request(
            f"{url}/invocations",
            data=json.dumps({"action": "submit", "kind": "crunch"}).encode(),
            headers={
                "Content-Type": "application/json",
                "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": _session(),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert json.loads(answer.read())["status"] == "RUNNING"
        server = psutil.Process(proc.pid)
        deadline = time.monotonic() + 20
        children: list[psutil.Process] = []
        while not children and time.monotonic() < deadline:
            children = [
                c for c in server.children(recursive=True) if "spawn_main" in " ".join(c.cmdline())
            ]
            time.sleep(0.05)
        assert children
        # Only the server gets the signal: its own shutdown must stop the child.
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        assert all_gone(children)
