"""Durable jobs on the local stack: a resumable job whose session is lost resumes in a fresh
session from its last checkpoint, as many times as its attempts allow; with the default one
attempt it ends LOST as before. Its history shows each resume; it is notified once."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from agentjobs.protocol import parse_time
from testbed.local_runtime import session_processes
from testbed.local_stack import LocalStack, Notified, local_stack
from tests.support.cli import InProcessCli
from tests.support.stack_waits import poller_done_with, record_item, wait_until

JOB_S = 6.0
"""Long enough to be stopped well into its work and twice over, short enough for a test: a
restart from 0 would run all 6 s in the fresh session, a resume at most the 3 s left."""
CHECKPOINT_EVERY_S = 0.5
LOST_AFTER_S = 3.0
"""How much checkpointed work a job has done when its session is taken away."""
POLLER_PERIOD_S = 1.0

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(
        tmp_path_factory.mktemp("durable"), poller_interval_s=POLLER_PERIOD_S, fastpath=True
    ) as running:
        yield running


def checkpoint(stack: LocalStack, job_id: str) -> dict[str, Any] | None:
    try:
        body = stack.client("s3").get_object(
            Bucket=stack.values()["RESULTS_BUCKET"], Key=f"jobs/{job_id}/checkpoint.json"
        )["Body"]
    except ClientError:
        return None
    stored: dict[str, Any] = json.loads(body.read())
    return stored


def worked_in(stack: LocalStack, job_id: str, session_id: str, at_least_s: float) -> bool:
    """The job has checkpointed at least `at_least_s` of work in this session."""
    stored = checkpoint(stack, job_id)
    return (
        stored is not None
        and stored.get("session_id") == session_id
        and float((stored.get("state") or {}).get("elapsed_s", 0)) >= at_least_s
    )


def active_session(stack: LocalStack, job_id: str) -> str:
    item = record_item(stack, job_id)
    return str(item.get("run_session_id", item["session_id"])["S"])


def resumed_into_a_new_session(stack: LocalStack, job_id: str, old: str) -> str | None:
    """The fresh session the poller resumed the job in, once the agent there accepted it."""
    item = record_item(stack, job_id)
    session = item.get("run_session_id", {}).get("S")
    if session and session != old and not item.get("resume_pending", {}).get("BOOL", False):
        return str(session)
    return None


def stop_session(stack: LocalStack, session_id: str) -> None:
    stack.client("bedrock-agentcore").stop_runtime_session(
        agentRuntimeArn=stack.values()["AGENT_RUNTIME_ARN"], runtimeSessionId=session_id
    )


def sigkill_session(stack: LocalStack, session_id: str) -> None:
    """The session's agent dies at once: no shutdown, no last checkpoint, no signal."""
    values = stack.values()
    victims = [
        p.pid
        for p in session_processes(
            values["LOCAL_RUNTIME_URL"], int(values["LOCAL_RUNTIME_PID"]), session_id
        )
    ]
    assert victims, f"no agent process runs session {session_id}"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)


def notifications_of(stack: LocalStack, job_id: str, timeout_s: float = 120) -> list[Notified]:
    """The job's notification, once it arrives, and any other the inbox holds for it after
    the job is fully done (collected and its sessions stopped)."""
    sqs = stack.client("sqs")
    found: list[Notified] = []

    def arrived() -> bool:
        found.extend(n for n in stack.take_notifications(sqs) if n.job_id == job_id)
        return bool(found)

    wait_until(arrived, f"no notification of {job_id}", timeout_s)
    # A second notification could only come from a later pass of the poller.
    poller_done_with(stack, [job_id], timeout_s=90)
    found.extend(n for n in stack.take_notifications(sqs, wait_s=0) if n.job_id == job_id)
    return found


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    # The console script's entry point in this process: an interpreter start per command
    # costs about half a CPU-second.
    return InProcessCli(monkeypatch, capsys)


def events(cli: InProcessCli, stack: LocalStack, job_id: str) -> list[dict[str, Any]]:
    run = cli("events", job_id, "--json", "--local-env", str(stack.state_dir / "env"))
    assert run.code == 0, str(run)
    listed: list[dict[str, Any]] = run.json()
    return listed


def resumed_sessions(history: list[dict[str, Any]]) -> list[str]:
    """The sessions each `resumed` event names, in order."""
    found = []
    for event in history:
        if event["type"] == "resumed":
            named = [event.get("session_id"), *(event.get("detail") or {}).values()]
            found.append(next(v for v in named if isinstance(v, str) and len(v) >= 33))
    return found


def result_of(stack: LocalStack, job_id: str) -> dict[str, Any]:
    answer = stack.invoke(active_session(stack, job_id), {"action": "result", "job_id": job_id})
    assert answer["status"] == "SUCCEEDED", answer
    result: dict[str, Any] = answer["result"]
    return result


def submit_resumable(stack: LocalStack, session_id: str, **extra: Any) -> str:
    return stack.submit(
        stack.client("bedrock-agentcore"),
        session_id,
        kind="synthetic",
        input={"seconds": JOB_S, "checkpoint_every_s": CHECKPOINT_EVERY_S},
        **extra,
    )


def test_a_stopped_session_resumes_from_its_checkpoint_in_a_fresh_session_and_succeeds(
    cli: InProcessCli, stack: LocalStack
) -> None:
    session_id = f"durable-stop-{uuid.uuid4()}"
    job_id = submit_resumable(stack, session_id, max_attempts=2)
    wait_until(lambda: worked_in(stack, job_id, session_id, LOST_AFTER_S), "no checkpoint")
    stop_session(stack, session_id)

    notified = notifications_of(stack, job_id)

    assert [n.status for n in notified] == ["SUCCEEDED"]
    item = record_item(stack, job_id)
    assert item["session_id"]["S"] == session_id, "the caller's session stays the job's"
    fresh = item["run_session_id"]["S"]
    assert fresh != session_id
    assert (item["attempt"]["N"], item["max_attempts"]["N"]) == ("2", "2")
    result = result_of(stack, job_id)
    assert result["attempts"] == 2
    # It went on from its checkpoint: the fresh session did only the work left.
    assert LOST_AFTER_S <= result["resumed_from_s"] < JOB_S
    in_fresh_s = (
        parse_time(item["finished_at"]["S"]) - parse_time(item["run_started_at"]["S"])
    ).total_seconds()
    assert in_fresh_s < JOB_S, f"the fresh session ran {in_fresh_s:.1f} s: a restart from 0"
    history = events(cli, stack, job_id)
    types = [e["type"] for e in history]
    assert types[0] == "submitted"
    assert types.count("session_lost") == 1
    assert resumed_sessions(history) == [fresh]
    assert types.index("session_lost") < types.index("resumed") < types.index("ended")
    assert "notified" in types
    assert all(isinstance(e["at"], str) for e in history)


def test_two_losses_with_three_attempts_succeed_on_the_third(
    cli: InProcessCli, stack: LocalStack
) -> None:
    session_id = f"durable-twice-{uuid.uuid4()}"
    job_id = submit_resumable(stack, session_id, max_attempts=3)
    wait_until(lambda: worked_in(stack, job_id, session_id, 2.0), "no checkpoint")
    stop_session(stack, session_id)
    second = wait_until(
        lambda: resumed_into_a_new_session(stack, job_id, session_id), "not resumed"
    )
    first_done = float(checkpoint(stack, job_id)["state"]["elapsed_s"])  # type: ignore[index]
    wait_until(lambda: worked_in(stack, job_id, second, first_done + 1.0), "no new checkpoint")
    # The second loss gives no warning: only a scheduled tick finds it.
    sigkill_session(stack, second)

    notified = notifications_of(stack, job_id)

    assert [n.status for n in notified] == ["SUCCEEDED"]
    item = record_item(stack, job_id)
    third = item["run_session_id"]["S"]
    assert len({session_id, second, third}) == 3
    assert (item["attempt"]["N"], item["max_attempts"]["N"]) == ("3", "3")
    result = result_of(stack, job_id)
    assert result["attempts"] == 3
    assert first_done < result["resumed_from_s"] < JOB_S
    history = events(cli, stack, job_id)
    assert resumed_sessions(history) == [second, third]
    assert [e["type"] for e in history].count("session_lost") == 2
    ended = [e for e in history if e["type"] == "ended"]
    assert len(ended) == 1 and ended[0]["attempt"] == 3


def test_with_the_default_one_attempt_a_lost_session_ends_the_job_lost(
    cli: InProcessCli, stack: LocalStack
) -> None:
    session_id = f"durable-once-{uuid.uuid4()}"
    job_id = submit_resumable(stack, session_id)
    wait_until(lambda: worked_in(stack, job_id, session_id, 2.0), "no checkpoint")
    stop_session(stack, session_id)

    notified = notifications_of(stack, job_id)

    assert [n.status for n in notified] == ["LOST"]
    item = record_item(stack, job_id)
    assert "run_session_id" not in item
    assert item.get("attempt", {"N": "1"})["N"] == "1"
    history = events(cli, stack, job_id)
    assert resumed_sessions(history) == []
    assert [e["type"] for e in history if e["type"] in ("ended", "notified")] == [
        "ended",
        "notified",
    ]
