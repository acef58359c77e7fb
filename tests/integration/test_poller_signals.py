"""The poller on completion signals (the fast path) against moto and real agents: shared
sessions, and the SQS batch answer (ReportBatchItemFailures) per signal."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from agentjobs.signals import CompletionSignal
from emulator.stack.event_source import sqs_event
from emulator.stack.schedule import LambdaContext
from handler import signal_batch_response
from testbed.aws import REGION, MotoEndpoint
from testbed.local_runtime import new_session_id
from testbed.poller import (
    PollerRig,
    inject_runtime_fault,
    poller_rig,
    wait_agent_status,
)


@pytest.fixture(scope="module")
def rig(moto: MotoEndpoint) -> Iterator[PollerRig]:
    with poller_rig(moto, moto.create_resources()) as running:
        yield running


def signals(*bodies: str) -> dict[str, object]:
    messages = [
        {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": body}
        for i, body in enumerate(bodies)
    ]
    return sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:completions", "us-east-1")


def signal_of(job_id: str, session_id: str) -> str:
    return CompletionSignal(job_id, session_id, "SUCCEEDED", None).body()


def test_last_signalled_job_of_a_shared_session_stops_it_and_closes_the_others(
    rig: PollerRig,
) -> None:
    session_id = new_session_id()
    first = rig.submit(session_id, kind="synthetic", input={"seconds": 0.1})
    second = rig.submit(session_id, kind="synthetic", input={"seconds": 0.1})
    wait_agent_status(rig, session_id, first, "SUCCEEDED")
    wait_agent_status(rig, session_id, second, "SUCCEEDED")

    report = rig.tick(event=signals(signal_of(first, session_id)))
    assert report.steps == {first: "awaiting-session"}
    assert rig.sessions()[session_id]["state"] != "Stopped"
    assert "lease_holder" not in rig.record(first)

    report = rig.tick(event=signals(signal_of(second, session_id)))
    assert report.steps == {first: "closed", second: "closed"}
    assert rig.sessions()[session_id]["state"] == "Stopped"
    for job_id in (first, second):
        record = rig.record(job_id)
        assert "attention" not in record and "lease_holder" not in record
        assert "notified_at" in record and "session_stopped_at" in record
    notified = [m["document"]["job_id"] for m in rig.inbox()]
    assert sorted(j for j in notified if j in (first, second)) == sorted([first, second])


def test_batch_answer_hands_back_only_the_signals_whose_jobs_were_not_reconciled(
    rig: PollerRig,
) -> None:
    done_session, failing_session = new_session_id(), new_session_id()
    done = rig.submit(done_session, kind="synthetic", input={"seconds": 0.1})
    failing = rig.submit(failing_session, kind="synthetic", input={"seconds": 0.1})
    wait_agent_status(rig, done_session, done, "SUCCEEDED")
    wait_agent_status(rig, failing_session, failing, "SUCCEEDED")
    inject_runtime_fault(
        rig, "InternalServerException", failing_session, 1, operation="StopRuntimeSession"
    )
    event = signals(
        signal_of(done, done_session),
        signal_of(failing, failing_session),
        "not json",
        json.dumps({"job_id": "no-such-job"}),
    )

    report = rig.tick(event=event)
    response = signal_batch_response(event, report, LambdaContext(240, REGION))  # type: ignore[arg-type]

    assert report.steps[done] == "closed" and report.steps[failing] == "retry"
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    # Delivered again, the signal finishes the job's closing.
    report = rig.tick(event=signals(signal_of(failing, failing_session)))
    assert report.steps == {failing: "closed"}
