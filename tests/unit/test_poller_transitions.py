"""The poller's state machine in process: moto's mock_aws and an agent answered at the transport."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from agentjobs import schema
from agentjobs.metrics import Metric
from agentjobs.protocol import JobStatus, format_time
from agentjobs.record import INLINE_RESULT_LIMIT, JobRecord
from agentjobs.store import JobStore, ResultStore
from emulator.resources import LocalResources
from handler import signal_batch_response
from jobpoller.events import Tick, parse_event, process_event
from jobpoller.lease import Lease
from jobpoller.report import TickReport
from jobpoller.services import PollerServices
from jobpoller.settings import PollerSettings
from testbed.aws import SharedSession
from tests.support.poller_rig import poller_rig, session_of
from tests.support.wire import agentcore_answer

SESSION = "unit-session-0000000000000000000000001"
"""AgentCore session ids are at least 33 characters."""
Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]
"""What the agent answers a payload: an HTTP status and a JSON body."""


@dataclass
class Agent:
    """The AgentCore data plane of one runtime, answered at the HTTP transport: each job's
    answer to `result`, the calls made, the sessions stopped."""

    answers: dict[str, Answer] = field(default_factory=dict)
    asked: list[dict[str, Any]] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def before_send(self, event_name: str, request: Any, **_: Any) -> AWSResponse:
        url = str(request.url)
        session_id = session_of(request)
        if event_name.endswith("StopRuntimeSession"):
            self.stopped.append(session_id)
            return agentcore_answer(url, 200, {"runtimeSessionId": session_id})
        payload = json.loads(request.body)
        self.asked.append(payload)
        answer = self.answers.get(payload["job_id"], _unknown)
        status, body = answer(payload) if payload["action"] == "result" else (200, {})
        return agentcore_answer(url, status, body)


def _unknown(payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {"error": {"code": "UNKNOWN_JOB", "message": "no such job"}}


def running(percent: float) -> Answer:
    return lambda p: (
        200,
        {
            "job_id": p["job_id"],
            "status": "RUNNING",
            "progress": {"percent": percent, "message": "working"},
        },
    )


def finished(**fields: Any) -> Answer:
    return lambda p: (200, {"job_id": p["job_id"], "progress": {"percent": 100}, **fields})


def refused(code: str, status: int) -> Answer:
    return lambda p: (status, {"__type": code, "message": "refused"})


@dataclass
class World:
    """moto's in-process AWS and a transport-level agent, wired as the handler wires them."""

    session: SharedSession
    resources: LocalResources
    agent: Agent
    settings: PollerSettings
    services: PollerServices

    @property
    def store(self) -> JobStore:
        return self.services.store

    def submit(self, job_id: str, session_id: str = SESSION, **changes: Any) -> JobRecord:
        now = datetime.now(UTC)
        record = JobRecord(
            job_id=job_id,
            session_id=session_id,
            kind="synthetic",
            status=JobStatus.RUNNING,
            submitted_at=format_time(now),
            updated_at=format_time(now),
            max_runtime_s=600,
            deadline_at=format_time(now + timedelta(seconds=600)),
        )
        return self.store.create_running(replace(record, **changes))[0]

    def put_raw(self, item: dict[str, Any]) -> None:
        self.session.client("dynamodb").put_item(TableName=self.resources.table, Item=item)

    def tick(self, event: object = None) -> TickReport:
        return process_event(event or {}, None, self.services)

    def raw(self, job_id: str) -> dict[str, Any]:
        item: dict[str, Any] = self.session.client("dynamodb").get_item(
            TableName=self.resources.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )["Item"]
        return item

    def notifications(self) -> list[dict[str, Any]]:
        sqs = self.session.client("sqs")
        got = sqs.receive_message(
            QueueUrl=self.resources.inbox_queue_url, MaxNumberOfMessages=10
        ).get("Messages", [])
        return [json.loads(json.loads(m["Body"])["Message"]) for m in got]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    agent = Agent()
    with poller_rig(monkeypatch, agent.before_send) as rig:
        yield World(rig.session, rig.resources, agent, rig.services.settings, rig.services)


def test_a_running_answer_records_progress_and_gives_the_lease_back(world: World) -> None:
    world.submit("j1")
    world.agent.answers["j1"] = running(42.0)

    report = world.tick()

    assert report.steps == {"j1": "running"}
    item = world.raw("j1")
    assert item["progress"]["M"]["percent"] == {"N": "42"}
    assert "last_seen_at" in item and "lease_holder" not in item
    assert world.agent.stopped == []


def test_a_success_is_recorded_notified_once_and_its_session_stopped(world: World) -> None:
    world.submit("j1")
    world.agent.answers["j1"] = finished(status="SUCCEEDED", result={"answer": 42})

    report = world.tick()

    assert report.steps == {"j1": "closed"}
    record = world.store.get("j1")
    assert record is not None and record.status == JobStatus.SUCCEEDED
    assert record.result == {"answer": 42} and record.notified_at is not None
    assert record.session_stopped_at is not None
    assert schema.ATTENTION_KEY not in world.raw("j1")
    assert world.agent.stopped == [SESSION]
    [note] = world.notifications()
    assert note["job_id"] == "j1" and note["status"] == "SUCCEEDED"
    assert world.tick().steps == {}  # off the attention index: nothing more to do


def test_a_large_inline_result_is_moved_to_the_results_bucket(world: World) -> None:
    world.submit("j1")
    big = "x" * (INLINE_RESULT_LIMIT + 1)
    world.agent.answers["j1"] = finished(status="SUCCEEDED", result=big)

    world.tick()

    record = world.store.get("j1")
    assert record is not None and record.result_uri is not None
    stored = ResultStore(world.session.client("s3"), world.resources.bucket).read_uri(
        record.result_uri
    )
    assert stored is not None and json.loads(stored) == big


@pytest.mark.parametrize(
    ("uri", "code"),
    [
        ("s3://unit-results/jobs/another-job/result.json", "RESULT_REFUSED"),
        (None, "RESULT_MISSING"),
    ],
)
def test_a_result_uri_must_be_the_jobs_own_existing_object(
    world: World, uri: str | None, code: str
) -> None:
    world.submit("j1")
    own = f"s3://{world.resources.bucket}/{schema.result_key('j1')}"
    world.agent.answers["j1"] = finished(status="SUCCEEDED", result_uri=uri or own)

    world.tick()

    record = world.store.get("j1")
    assert record is not None and record.status == JobStatus.FAILED
    assert record.error is not None and record.error.code == code


def test_a_job_its_session_forgot_is_lost_without_a_stored_outcome(world: World) -> None:
    world.submit("j1")

    world.tick()

    record = world.store.get("j1")
    assert record is not None and record.status == JobStatus.LOST
    assert record.error is not None and record.error.code == "SESSION_LOST"


def test_a_job_its_session_forgot_ends_as_its_stored_outcome_says(world: World) -> None:
    world.submit("j1")
    results = ResultStore(world.session.client("s3"), world.resources.bucket)
    results.put_outcome({"job_id": "j1", "status": "SUCCEEDED", "result": [1, 2]})

    world.tick()

    record = world.store.get("j1")
    assert record is not None and record.status == JobStatus.SUCCEEDED
    assert record.result == [1, 2]


def test_a_busy_session_is_asked_again_next_tick(world: World) -> None:
    world.submit("j1")
    world.agent.answers["j1"] = refused("RetryableConflictException", 409)

    assert world.tick().steps == {"j1": "running"}
    record = world.store.get("j1")
    assert record is not None and record.status == JobStatus.RUNNING
    assert record.poll_failures == 0


def test_a_job_past_its_deadline_times_out_and_its_agent_is_asked_to_cancel(
    world: World,
) -> None:
    past = format_time(datetime.now(UTC) - timedelta(seconds=1))
    world.submit("j1", deadline_at=past)
    world.agent.answers["j1"] = running(10)

    world.tick()

    record = world.store.get("j1")
    assert record is not None and record.status == JobStatus.TIMED_OUT
    assert {"action": "cancel", "job_id": "j1"} in world.agent.asked


def test_failed_polls_are_counted_then_fail_the_job_at_the_limit(world: World) -> None:
    world.submit("j1")
    world.agent.answers["j1"] = refused("InternalServerException", 500)

    assert world.tick().steps == {"j1": "running"}
    record = world.store.get("j1")
    assert record is not None and record.poll_failures == 1
    assert "InternalServerException" in world.raw("j1")["last_poll_error"]["S"]

    world.tick()
    record = world.store.get("j1")
    assert record is not None and record.status == JobStatus.FAILED
    assert record.error is not None and record.error.code == "POLL_FAILED"


def test_an_unusable_answer_counts_as_a_failed_poll(world: World) -> None:
    world.submit("j1")
    world.agent.answers["j1"] = lambda p: (200, {"status": "DANCING"})

    report = world.tick()

    assert report.counts[Metric.BAD_ANSWERS] == 1 and report.counts[Metric.POLL_ERRORS] == 1
    record = world.store.get("j1")
    assert record is not None and record.poll_failures == 1


def test_a_malformed_record_is_failed_notified_and_closed_never_polled(world: World) -> None:
    world.submit("j1")
    item = world.raw("j1")
    del item["kind"]
    world.put_raw(item)

    report = world.tick()

    assert report.steps == {"j1": "closed"} and report.counts[Metric.BAD_RECORDS] == 1
    after = world.raw("j1")
    assert after["status"] == {"S": "FAILED"}
    assert after["error"]["M"]["code"] == {"S": "INVALID_RECORD"}
    assert world.agent.asked == []
    [note] = world.notifications()
    assert note["status"] == "FAILED" and note["kind"] is None


def test_a_job_leased_by_another_poller_is_skipped(world: World) -> None:
    world.submit("j1")
    taken = Lease.take(world.store, "j1", "another-poller", 60)
    assert taken is not None and taken[0].held

    assert world.tick().steps == {"j1": "skipped"}
    assert world.agent.asked == []


def test_a_lease_lost_to_another_poller_refuses_its_writes(world: World) -> None:
    world.submit("j1")
    taken = Lease.take(world.store, "j1", "first", 0.001)
    assert taken is not None
    lease, _ = taken
    assert Lease.take(world.store, "j1", "second", 60) is not None

    lease.release()  # the lease is the second poller's now: releasing changes nothing

    assert not lease.held
    assert world.raw("j1")["lease_holder"] == {"S": "second"}


def test_a_shared_session_is_stopped_once_after_all_its_jobs_are_final(world: World) -> None:
    world.submit("j1")
    world.submit("j2")
    world.agent.answers["j1"] = finished(status="SUCCEEDED", result=1)
    world.agent.answers["j2"] = running(50)

    report = world.tick()
    assert report.steps == {"j1": "awaiting-session", "j2": "running"}
    assert world.agent.stopped == []

    world.agent.answers["j2"] = finished(status="FAILED", error={"code": "E", "message": "m"})
    report = world.tick()

    assert report.steps == {"j1": "closed", "j2": "closed"}
    assert world.agent.stopped == [SESSION]
    assert world.tick().steps == {}
    assert sorted(n["job_id"] for n in world.notifications()) == ["j1", "j2"]


def test_a_signal_batch_is_read_once_and_hands_back_only_unhandled_signals(
    world: World,
) -> None:
    world.submit("j1")
    world.agent.answers["j1"] = finished(status="SUCCEEDED", result=1)
    event = {
        "Records": [
            {"messageId": "m0", "eventSource": "aws:sqs", "body": '{"job_id": "j1"}'},
            {"messageId": "m1", "eventSource": "aws:sqs", "body": "not json"},
        ]
    }
    assert parse_event({"source": "aws.scheduler"}) == Tick()

    report = world.tick(event)

    assert report.steps == {"j1": "closed"}
    assert signal_batch_response(event, report, None) == {"batchItemFailures": []}
