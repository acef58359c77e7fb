"""A caller with only boto3 and a session id gets the job's result by re-invoking the session,
after the poller stopped it or after someone stopped it by hand, on the local stack."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.local_stack import LocalStack, Notified, local_stack
from tests.support.stack_waits import wait_until

JOBS: dict[str, dict[str, Any]] = {
    "small": {"seconds": 0.3, "result_bytes": 300},
    "large": {"seconds": 0.3, "result_bytes": 100_000},
    "failed": {"seconds": 0.3, "fail": "the source is empty"},
    "cancelled": {"seconds": 120},
}
EXPECTED_STATUS = {
    "small": "SUCCEEDED",
    "large": "SUCCEEDED",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
}
FAR_OFF_S = 3600.0
"""A schedule period longer than the test: only the tick at start-up runs."""


@pytest.fixture(scope="module")
def unpolled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack whose poller runs only its start-up tick, with no fast path: shared by the
    tests that want no poller, each in sessions of its own."""
    with local_stack(
        tmp_path_factory.mktemp("unpolled"), poller_interval_s=FAR_OFF_S, fastpath=False
    ) as stack:
        yield stack


def invoke(stack: LocalStack, client: Any, session_id: str, payload: Any) -> dict[str, Any]:
    """InvokeAgentRuntime as a caller writes it; a session still starting is retried."""
    for attempt in range(100):
        try:
            answer = client.invoke_agent_runtime(
                agentRuntimeArn=stack.values()["AGENT_RUNTIME_ARN"],
                runtimeSessionId=session_id,
                payload=json.dumps(payload).encode(),
            )
            break
        except client.exceptions.RetryableConflictException:
            assert attempt < 99
            time.sleep(0.1)
    assert answer["statusCode"] == 200
    body: dict[str, Any] = json.loads(answer["response"].read())
    return body


def stored_outcome(stack: LocalStack, job_id: str) -> dict[str, Any]:
    body = (
        stack.client("s3")
        .get_object(Bucket=stack.values()["RESULTS_BUCKET"], Key=f"jobs/{job_id}/outcome.json")[
            "Body"
        ]
        .read()
    )
    outcome: dict[str, Any] = json.loads(body)
    return outcome


def table_status(stack: LocalStack, job_id: str) -> str:
    item = stack.client("dynamodb").get_item(
        TableName=stack.values()["JOBS_TABLE"], Key={"job_id": {"S": job_id}}, ConsistentRead=True
    )["Item"]
    return str(item["status"]["S"])


def submit_all(stack: LocalStack, client: Any, prefix: str) -> dict[str, tuple[str, str]]:
    """Each job in its own session; the cancelled one is cancelled once it runs."""
    jobs = {}
    for name, job_input in JOBS.items():
        session_id = f"{prefix}-{name}-{uuid.uuid4()}"
        jobs[name] = (
            session_id,
            stack.submit(client, session_id, kind="synthetic", input=job_input),
        )
    session_id, job_id = jobs["cancelled"]
    cancelled = invoke(stack, client, session_id, {"action": "cancel", "job_id": job_id})
    assert cancelled["status"] == "CANCELLED", cancelled
    return jobs


def assert_answered_from_the_stores(
    stack: LocalStack, client: Any, jobs: dict[str, tuple[str, str]]
) -> None:
    for name, (session_id, job_id) in jobs.items():
        outcome = stored_outcome(stack, job_id)
        assert outcome["status"] == EXPECTED_STATUS[name]
        by_id = invoke(stack, client, session_id, {"action": "result", "job_id": job_id})
        latest = invoke(stack, client, session_id, {"action": "result"})
        status = invoke(stack, client, session_id, {"action": "status"})
        for answer in (by_id, latest):
            assert answer == {**outcome, "live": False}, name
        assert status == {
            **{k: v for k, v in outcome.items() if k not in {"result", "result_uri"}},
            "live": False,
        }
        if name == "large":
            assert by_id["result_uri"].startswith(f"s3://{stack.values()['RESULTS_BUCKET']}/")
        if name == "failed":
            assert by_id["error"] == {"code": "JOB_FAILED", "message": "the source is empty"}


def test_result_after_the_poller_notified_the_job_and_stopped_its_session(tmp_path: Path) -> None:
    with local_stack(tmp_path, poller_interval_s=1, fastpath=True) as stack:
        client = stack.client("bedrock-agentcore")
        jobs = submit_all(stack, client, "collected")
        sqs = stack.client("sqs")
        notified: dict[str, Notified] = {}

        def all_notified() -> bool:
            notified.update({n.job_id: n for n in stack.take_notifications(sqs)})
            return all(job_id in notified for _, job_id in jobs.values())

        wait_until(all_notified, "not every job was notified")
        wait_until(
            lambda: all(stack.session_states().get(s) == "Stopped" for s, _ in jobs.values()),
            "the poller did not stop every spent session",
        )
        for name, (_, job_id) in jobs.items():
            assert notified[job_id].status == EXPECTED_STATUS[name]
            assert table_status(stack, job_id) == EXPECTED_STATUS[name]

        assert_answered_from_the_stores(stack, client, jobs)

        unknown = invoke(stack, client, jobs["small"][0], {"action": "result", "job_id": "0" * 32})
        assert unknown["status"] == "UNKNOWN"
        assert unknown["error"]["code"] == "UNKNOWN_JOB"


def test_result_after_the_session_was_stopped_by_hand_before_any_poller_saw_it(
    unpolled: LocalStack,
) -> None:
    stack = unpolled
    wait_until(lambda: stack.ticks_done() == 1, "the start-up tick did not finish")
    client = stack.client("bedrock-agentcore")
    jobs = submit_all(stack, client, "by-hand")
    for session_id, job_id in jobs.values():
        wait_until(
            lambda s=session_id, j=job_id: (
                invoke(stack, client, s, {"action": "status", "job_id": j})["status"] != "RUNNING"
            ),
            f"job {job_id} did not end",
        )
        client.stop_runtime_session(
            agentRuntimeArn=stack.values()["AGENT_RUNTIME_ARN"], runtimeSessionId=session_id
        )
    wait_until(
        lambda: all(stack.session_states().get(s) == "Stopped" for s, _ in jobs.values()),
        "the sessions were not stopped",
    )
    for _, job_id in jobs.values():
        assert table_status(stack, job_id) == "RUNNING", "a poller collected the job"

    assert_answered_from_the_stores(stack, client, jobs)

    assert stack.ticks_done() == 1
    for _, job_id in jobs.values():
        assert table_status(stack, job_id) == "RUNNING", "an answer from the stores wrote"


def test_ping_method_on_a_busy_session_says_healthy_busy(unpolled: LocalStack) -> None:
    stack = unpolled
    client = stack.client("bedrock-agentcore")
    session_id = f"ping-{uuid.uuid4()}"
    job_id = stack.submit(client, session_id, kind="synthetic", input={"seconds": 120})
    ping = invoke(stack, client, session_id, {"method": "ping"})
    assert ping["status"] == "HealthyBusy"
    assert [(j["job_id"], j["status"], j["live"]) for j in ping["jobs"]] == [
        (job_id, "RUNNING", True)
    ]
    with_payload = invoke(stack, client, session_id, {"method": "ping", "payload": {}})
    assert with_payload["status"] == "HealthyBusy"
    invoke(stack, client, session_id, {"action": "cancel", "job_id": job_id})
    assert invoke(stack, client, session_id, {"method": "ping"})["status"] == "Healthy"
