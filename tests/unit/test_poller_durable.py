"""The poller's durable-job transitions in process (loss, resume, handoff, attempts, history):
moto's mock_aws and an agent answered at the transport."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from agentjobs.history import Event, EventLog
from agentjobs.metrics import Metric
from agentjobs.notifier import Notification
from agentjobs.protocol import JobStatus, format_time
from agentjobs.record import JobRecord
from agentjobs.store import JobStore, ResultStore
from emulator.resources import LocalResources
from jobpoller.events import process_event
from jobpoller.report import TickReport
from jobpoller.services import PollerServices
from jobpoller.settings import PollerSettings, PollerSettingsError
from testbed.aws import SharedSession
from tests.support.poller_rig import poller_rig, session_of
from tests.support.wire import agentcore_answer

SESSION = "unit-session-0000000000000000000000001"
"""The caller's session (AgentCore session ids are at least 33 characters)."""
RUN_SESSION = "unit-session-0000000000000000000000002"
JOB = "0123456789abcdef0123456789abcdef"
Handler = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]
"""What the agent answers a payload in a session: an HTTP status and a JSON body."""


@dataclass
class Agent:
    """The AgentCore data plane, answered at the HTTP transport by action: every call made
    (session, payload) and every session stopped, in order."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def before_send(self, event_name: str, request: Any, **_: Any) -> AWSResponse:
        url = str(request.url)
        session_id = session_of(request)
        if event_name.endswith("StopRuntimeSession"):
            self.stopped.append(session_id)
            return agentcore_answer(url, 200, {"runtimeSessionId": session_id})
        payload = json.loads(request.body)
        self.calls.append((session_id, payload))
        handler = self.handlers.get(payload["action"], unknown)
        status, body = handler(session_id, payload)
        return agentcore_answer(url, status, body)

    def sent(self, action: str) -> list[tuple[str, dict[str, Any]]]:
        return [(s, p) for s, p in self.calls if p["action"] == action]


def unknown(session_id: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {"error": {"code": "UNKNOWN_JOB", "message": "no such job"}}


def running(percent: float = 10, **fields: Any) -> Handler:
    return lambda s, p: (
        200,
        {"job_id": p["job_id"], "status": "RUNNING", "progress": {"percent": percent}, **fields},
    )


def finished(**fields: Any) -> Handler:
    return lambda s, p: (200, {"job_id": p["job_id"], "progress": {"percent": 100}, **fields})


def error(code: str, message: str = "refused") -> Handler:
    return lambda s, p: (200, {"error": {"code": code, "message": message}})


def failing(code: str = "InternalServerException", status: int = 500) -> Handler:
    return lambda s, p: (status, {"__type": code, "message": "failed"})


@dataclass
class World:
    """moto's in-process AWS (job and history tables) and a transport-level agent."""

    session: SharedSession
    resources: LocalResources
    agent: Agent
    services: PollerServices
    events_table: str

    @property
    def store(self) -> JobStore:
        return self.services.store

    @property
    def results(self) -> ResultStore:
        return self.services.results

    def submit(self, job_id: str = JOB, *, age_s: float = 0, **changes: Any) -> JobRecord:
        submitted = datetime.now(UTC) - timedelta(seconds=age_s)
        runtime = float(changes.pop("max_runtime_s", 600))
        record = JobRecord(
            job_id=job_id,
            session_id=SESSION,
            kind="synthetic",
            status=JobStatus.RUNNING,
            submitted_at=format_time(submitted),
            updated_at=format_time(submitted),
            max_runtime_s=runtime,
            deadline_at=format_time(submitted + timedelta(seconds=runtime)),
            resumable=True,
            max_attempts=3,
            expires_at=int(submitted.timestamp()) + 86_400,
        )
        return self.store.create_running(replace(record, **changes))[0]

    def tick(self, services: PollerServices | None = None) -> TickReport:
        return process_event({}, None, services or self.services)

    def record(self, job_id: str = JOB) -> JobRecord:
        record = self.store.get(job_id)
        assert record is not None
        return record

    def raw(self, job_id: str = JOB) -> dict[str, Any]:
        item: dict[str, Any] = self.session.client("dynamodb").get_item(
            TableName=self.resources.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )["Item"]
        return item

    def events(self, job_id: str = JOB) -> list[Event]:
        return EventLog(self.session.client("dynamodb"), self.events_table).list(job_id)

    def checkpoint(self, attempt: int, at: datetime | None = None, job_id: str = JOB) -> str:
        taken = format_time(at or datetime.now(UTC) - timedelta(seconds=5))
        self.results.put_checkpoint(
            {"job_id": job_id, "attempt": attempt, "session_id": SESSION, "at": taken}
        )
        return taken

    def notifications(self) -> list[dict[str, Any]]:
        sqs = self.session.client("sqs")
        got = sqs.receive_message(
            QueueUrl=self.resources.inbox_queue_url, MaxNumberOfMessages=10
        ).get("Messages", [])
        return [json.loads(json.loads(m["Body"])["Message"]) for m in got]

    def with_settings(self, **env: str) -> PollerServices:
        settings = PollerSettings.from_env({**self.services.settings.environment, **env})
        return replace(self.services, settings=settings)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    agent = Agent()
    with poller_rig(monkeypatch, agent.before_send, EVENTS_TABLE="unit-events") as rig:
        yield World(rig.session, rig.resources, agent, rig.services, rig.resources.events_table)


def _types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


# The active session


def test_a_resumed_job_is_polled_in_its_run_session_and_that_session_is_stopped(
    world: World,
) -> None:
    world.submit(run_session_id=RUN_SESSION, attempt=2)
    world.agent.handlers["result"] = finished(status="SUCCEEDED", result=1, attempt=2)

    report = world.tick()

    assert report.steps == {JOB: "closed"}
    assert [s for s, _ in world.agent.calls] == [RUN_SESSION]
    assert world.agent.stopped == [RUN_SESSION]
    assert world.record().status == JobStatus.SUCCEEDED


def test_a_timed_out_resumed_job_is_cancelled_in_its_run_session(world: World) -> None:
    world.submit(run_session_id=RUN_SESSION, age_s=700)
    world.agent.handlers["result"] = running()

    world.tick()

    assert world.record().status == JobStatus.TIMED_OUT
    assert (RUN_SESSION, {"action": "cancel", "job_id": JOB}) in world.agent.calls


# Loss -> resume


def test_a_lost_session_with_attempts_left_resumes_the_job_in_a_fresh_session(
    world: World,
) -> None:
    world.submit()
    taken = world.checkpoint(attempt=1)
    world.agent.handlers["resume"] = running(0, attempt=2)

    report = world.tick()

    assert report.steps == {JOB: "running"} and report.counts[Metric.JOBS_RESUMED] == 1
    record = world.record()
    assert record.status == JobStatus.RUNNING and record.session_id == SESSION
    fresh = record.run_session_id
    assert fresh is not None and len(fresh) >= 33 and fresh.endswith("-r2")
    assert record.attempt == 2 and not record.resume_pending
    assert record.run_started_at is not None and record.poll_failures == 0
    assert world.agent.calls == [
        (SESSION, {"action": "result", "job_id": JOB}),
        (fresh, {"action": "resume", "job_id": JOB}),
    ]
    assert world.agent.stopped == [SESSION]
    lost, resumed = world.events()
    assert (lost.type, lost.session_id, lost.attempt) == ("session_lost", SESSION, 1)
    assert (resumed.type, resumed.session_id, resumed.attempt) == ("resumed", fresh, 2)
    assert resumed.detail["checkpoint_at"] == taken

    world.agent.handlers["result"] = running(40, attempt=2)
    world.tick()
    assert world.agent.calls[-1] == (fresh, {"action": "result", "job_id": JOB})


def test_failed_polls_at_the_limit_resume_a_resumable_job(world: World) -> None:
    world.submit()
    world.agent.handlers["result"] = failing()
    world.agent.handlers["resume"] = running(0)

    world.tick()
    assert world.record().attempt == 1
    world.tick()

    record = world.record()
    assert record.status == JobStatus.RUNNING and record.attempt == 2
    assert record.poll_failures == 0
    assert "polls in a row failed" in str(world.events()[0].detail["reason"])


def test_an_unanswered_resume_is_sent_again_to_the_same_session_without_a_new_attempt(
    world: World,
) -> None:
    world.submit()
    world.agent.handlers["resume"] = failing()

    world.tick()

    record = world.record()
    assert record.resume_pending and record.attempt == 2 and record.poll_failures == 1
    fresh = record.run_session_id

    world.agent.handlers["resume"] = running(5, attempt=2)
    world.tick()

    record = world.record()
    assert not record.resume_pending and record.attempt == 2
    assert record.run_session_id == fresh
    assert [s for s, _ in world.agent.sent("resume")] == [fresh, fresh]
    assert world.agent.sent("result") == [(SESSION, {"action": "result", "job_id": JOB})]
    assert _types(world.events()) == ["session_lost", "resumed"]


def test_a_resume_never_taken_ends_the_job_lost_at_the_poll_failure_limit(
    world: World,
) -> None:
    world.submit()
    world.agent.handlers["resume"] = failing()

    world.tick()
    world.tick()

    record = world.record()
    assert record.status == JobStatus.LOST and record.attempt == 2
    assert record.error is not None and record.error.code == "SESSION_LOST"
    assert len(world.agent.sent("resume")) == 2
    assert _types(world.events()) == ["session_lost", "resumed", "ended", "notified"]
    [note] = world.notifications()
    assert note["status"] == "LOST"


@pytest.mark.parametrize("code", ["RESUME_FAILED", "NOT_RESUMABLE", "JOB_ENDED"])
def test_a_permanent_resume_refusal_ends_the_job_failed_with_that_error(
    world: World, code: str
) -> None:
    world.submit()
    world.agent.handlers["resume"] = error(code, "the job's stored input is missing")

    report = world.tick()

    assert report.steps == {JOB: "closed"}
    record = world.record()
    assert record.status == JobStatus.FAILED
    assert record.error is not None and record.error.code == code
    assert record.error.message == "the job's stored input is missing"
    fresh = record.run_session_id
    assert fresh is not None and world.agent.stopped == [SESSION, fresh]
    assert _types(world.events()) == ["session_lost", "resumed", "ended", "notified"]
    [note] = world.notifications()
    assert note["status"] == "FAILED" and note["attempt"] == 2


def tearing_down(busy_answers: int) -> Handler:
    """A session being torn down: busy (409) for a while, then a fresh process that does not
    know the job."""
    asked: list[str] = []

    def answer(session_id: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        asked.append(session_id)
        if len(asked) <= busy_answers:
            return 409, {"__type": "RetryableConflictException", "message": "stopping"}
        return unknown(session_id, payload)

    return answer


def signal_of(job_id: str) -> dict[str, Any]:
    body = json.dumps({"job_id": job_id, "session_id": SESSION, "status": "RUNNING"})
    return {"Records": [{"messageId": "m0", "eventSource": "aws:sqs", "body": body}]}


def test_a_signalled_job_whose_session_is_still_stopping_is_resumed_in_the_same_pass(
    world: World,
) -> None:
    # The agent's shutdown signals the job it interrupts from inside the stopping session.
    world.submit()
    world.checkpoint(attempt=1)
    world.agent.handlers["result"] = tearing_down(busy_answers=2)
    world.agent.handlers["resume"] = running(0, attempt=2)

    report = process_event(signal_of(JOB), None, world.services)

    assert report.steps == {JOB: "running"} and report.counts[Metric.JOBS_RESUMED] == 1
    assert [p["action"] for _, p in world.agent.calls] == ["result"] * 3 + ["resume"]
    record = world.record()
    assert record.attempt == 2 and record.run_session_id is not None


def test_a_tick_asks_a_busy_session_once_and_leaves_the_job_for_the_next_tick(
    world: World,
) -> None:
    world.submit()
    world.checkpoint(attempt=1)
    world.agent.handlers["result"] = tearing_down(busy_answers=2)

    report = world.tick()

    assert report.steps == {JOB: "running"}
    assert [p["action"] for _, p in world.agent.calls] == ["result"]
    assert world.record().attempt == 1 and world.record().poll_failures == 0


def test_a_resume_answered_busy_is_asked_again_next_tick_not_counted_a_failure(
    world: World,
) -> None:
    world.submit()
    world.agent.handlers["resume"] = failing("RetryableConflictException", 409)

    world.tick()
    world.tick()

    record = world.record()
    assert record.status == JobStatus.RUNNING and record.resume_pending
    assert record.poll_failures == 0 and record.attempt == 2


@pytest.mark.parametrize(
    ("changes", "checkpoint_attempt"),
    [
        ({"resumable": False, "max_attempts": 1}, None),
        ({"max_attempts": 2}, 2),
        ({"max_attempts": 3, "attempt": 3, "run_session_id": RUN_SESSION}, None),
    ],
    ids=["not-resumable", "checkpoint-used-the-last", "record-used-the-last"],
)
def test_a_lost_session_with_no_attempt_left_ends_the_job_lost_as_before(
    world: World, changes: dict[str, Any], checkpoint_attempt: int | None
) -> None:
    world.submit(**changes)
    if checkpoint_attempt is not None:
        world.checkpoint(attempt=checkpoint_attempt)

    world.tick()

    record = world.record()
    assert record.status == JobStatus.LOST
    assert record.error is not None and record.error.code == "SESSION_LOST"
    assert record.attempt == max(changes.get("attempt", 1), checkpoint_attempt or 1)
    assert world.agent.sent("resume") == []
    assert "session_lost" not in _types(world.events())


def test_failed_polls_with_no_attempt_left_end_the_job_poll_failed_as_before(
    world: World,
) -> None:
    world.submit(max_attempts=1)
    world.agent.handlers["result"] = failing()

    world.tick()
    world.tick()

    record = world.record()
    assert record.status == JobStatus.FAILED
    assert record.error is not None and record.error.code == "POLL_FAILED"


def test_a_lost_session_past_the_deadline_is_not_resumed(world: World) -> None:
    world.submit(age_s=700)

    world.tick()

    assert world.record().status == JobStatus.LOST
    assert world.agent.sent("resume") == []


# Stale outcomes


def test_an_earlier_attempts_stored_outcome_is_ignored_and_the_job_resumed(
    world: World,
) -> None:
    world.submit(attempt=2, run_session_id=RUN_SESSION)
    world.results.put_outcome({"job_id": JOB, "status": "SUCCEEDED", "result": "old", "attempt": 1})
    world.agent.handlers["resume"] = running(0)

    world.tick()

    record = world.record()
    assert record.status == JobStatus.RUNNING and record.attempt == 3
    assert world.agent.sent("resume")[0][0] == record.run_session_id
    assert world.agent.stopped == [RUN_SESSION]


def test_an_earlier_attempts_outcome_answered_by_the_session_is_not_the_jobs_end(
    world: World,
) -> None:
    world.submit(attempt=2, run_session_id=RUN_SESSION)
    world.agent.handlers["result"] = finished(status="SUCCEEDED", result="old", attempt=1)
    world.agent.handlers["resume"] = running(0)

    world.tick()

    record = world.record()
    assert record.status == JobStatus.RUNNING and record.attempt == 3


def test_the_current_attempts_stored_outcome_ends_the_job(world: World) -> None:
    world.submit(attempt=2, run_session_id=RUN_SESSION)
    world.results.put_outcome({"job_id": JOB, "status": "SUCCEEDED", "result": 7, "attempt": 2})

    world.tick()

    record = world.record()
    assert record.status == JobStatus.SUCCEEDED and record.result == 7
    assert world.agent.sent("resume") == []


# Handoff

HOUR = 3600.0


def _near_lifetime(world: World) -> PollerServices:
    return world.with_settings(
        POLLER_SESSION_MAX_LIFETIME_S=f"{HOUR:g}", POLLER_HANDOFF_MARGIN_S="600"
    )


def _just_now() -> str:
    """A checkpoint time for a job submitted before it: taken in its current session."""
    return format_time(datetime.now(UTC))


def test_a_session_near_its_max_lifetime_hands_the_job_off_keeping_its_attempt(
    world: World,
) -> None:
    world.submit(age_s=HOUR - 300, max_runtime_s=3 * HOUR)
    world.agent.handlers["result"] = running(50, checkpoint_at=_just_now())
    world.agent.handlers["suspend"] = lambda s, p: (
        200,
        {"job_id": JOB, "status": "RUNNING", "suspended": True},
    )
    world.agent.handlers["resume"] = running(50)

    report = world.tick(_near_lifetime(world))

    assert report.counts[Metric.JOBS_HANDED_OFF] == 1
    assert report.counts[Metric.JOBS_RESUMED] == 0
    record = world.record()
    fresh = record.run_session_id
    assert fresh is not None and fresh.endswith("-r1")
    assert record.attempt == 1 and not record.resume_pending
    assert [(s, p["action"]) for s, p in world.agent.calls] == [
        (SESSION, "result"),
        (SESSION, "suspend"),
        (fresh, "resume"),
    ]
    assert world.agent.stopped == [SESSION]
    handed, resumed = world.events()
    assert (handed.type, handed.session_id, handed.attempt) == ("handed_off", SESSION, 1)
    assert (resumed.type, resumed.session_id, resumed.attempt) == ("resumed", fresh, 1)


def test_the_session_age_counts_from_the_process_start_when_that_is_earlier(
    world: World,
) -> None:
    world.submit(max_runtime_s=3 * HOUR)
    started = format_time(datetime.now(UTC) - timedelta(seconds=HOUR - 60))
    world.agent.handlers["result"] = running(
        50, session_started_at=started, checkpoint_at=_just_now()
    )
    world.agent.handlers["resume"] = running(50)

    world.tick(_near_lifetime(world))

    assert world.agent.sent("suspend") == [(SESSION, {"action": "suspend", "job_id": JOB})]
    assert world.record().run_session_id is not None


@pytest.mark.parametrize(
    ("age_s", "runtime_s"),
    [(HOUR - 900, 3 * HOUR), (HOUR - 300, HOUR - 60)],
    ids=["young-session", "deadline-first"],
)
def test_no_handoff_for_a_young_session_or_a_job_whose_deadline_comes_first(
    world: World, age_s: float, runtime_s: float
) -> None:
    world.submit(age_s=age_s, max_runtime_s=runtime_s)
    world.agent.handlers["result"] = running(50, checkpoint_at=_just_now())

    world.tick(_near_lifetime(world))

    assert world.agent.sent("suspend") == [] and world.record().run_session_id is None


@pytest.mark.parametrize(
    "checkpoint_s",
    [None, HOUR],
    ids=["never-checkpointed", "checkpointed-before-this-session"],
)
def test_no_handoff_for_a_job_that_has_not_checkpointed_in_its_session(
    world: World, checkpoint_s: float | None
) -> None:
    # A fresh session would start it over from where this one did: handed off at every
    # session's end, it would never finish. It stays, and meets the max lifetime.
    given = format_time(datetime.now(UTC) - timedelta(seconds=HOUR - 300))
    world.submit(
        age_s=HOUR + 600, max_runtime_s=3 * HOUR, run_session_id=RUN_SESSION, run_started_at=given
    )
    fields: dict[str, Any] = {}
    if checkpoint_s is not None:
        fields["checkpoint_at"] = format_time(datetime.now(UTC) - timedelta(seconds=checkpoint_s))
    world.agent.handlers["result"] = running(50, **fields)

    report = world.tick(_near_lifetime(world))

    assert world.agent.sent("suspend") == [] and report.counts[Metric.JOBS_HANDED_OFF] == 0
    record = world.record()
    assert record.run_session_id == RUN_SESSION and record.progress.percent == 50


def test_a_job_that_ended_while_being_suspended_ends_as_its_outcome_says(
    world: World,
) -> None:
    world.submit(age_s=HOUR - 300, max_runtime_s=3 * HOUR)
    world.agent.handlers["result"] = running(99, checkpoint_at=_just_now())

    def suspend(session_id: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        world.results.put_outcome({"job_id": JOB, "status": "SUCCEEDED", "result": 1})
        return 200, {"job_id": JOB, "status": "SUCCEEDED"}

    world.agent.handlers["suspend"] = suspend

    world.tick(_near_lifetime(world))

    record = world.record()
    assert record.status == JobStatus.SUCCEEDED and record.run_session_id is None
    assert world.agent.sent("resume") == []


def test_an_agent_refusing_to_suspend_a_job_not_resumable_keeps_it_where_it_is(
    world: World,
) -> None:
    world.submit(age_s=HOUR - 300, max_runtime_s=3 * HOUR)
    world.agent.handlers["result"] = running(60, checkpoint_at=_just_now())
    world.agent.handlers["suspend"] = error("NOT_RESUMABLE", "job kind is not resumable")

    world.tick(_near_lifetime(world))

    record = world.record()
    assert record.run_session_id is None and record.progress.percent == 60
    assert world.agent.sent("resume") == [] and world.agent.stopped == []


# A resume sent again


def test_a_resume_sent_again_after_the_job_ended_there_collects_its_result(
    world: World,
) -> None:
    world.submit()
    world.agent.handlers["resume"] = failing()
    world.tick()
    fresh = world.record().run_session_id
    world.agent.handlers["resume"] = finished(status="SUCCEEDED")
    world.agent.handlers["result"] = finished(status="SUCCEEDED", result=5, attempt=2)

    report = world.tick()

    assert report.steps == {JOB: "closed"}
    record = world.record()
    assert record.status == JobStatus.SUCCEEDED and record.result == 5
    assert not record.resume_pending
    assert [(s, p["action"]) for s, p in world.agent.calls][-2:] == [
        (fresh, "resume"),
        (fresh, "result"),
    ]


# Progress


def test_a_running_answer_persists_the_attempt_and_the_last_checkpoint_time(
    world: World,
) -> None:
    world.submit()
    taken = format_time(datetime.now(UTC) - timedelta(seconds=3))
    world.agent.handlers["result"] = running(30, attempt=2, checkpoint_at=taken)

    world.tick()

    record = world.record()
    assert record.attempt == 2 and record.checkpoint_at == taken
    assert record.progress.percent == 30


def test_a_running_answer_never_lowers_the_attempt(world: World) -> None:
    world.submit(attempt=2, run_session_id=RUN_SESSION)
    world.agent.handlers["result"] = running(30, attempt=1)

    world.tick()

    assert world.record().attempt == 2


# Overlapping pollers


def test_two_passes_racing_on_one_lost_job_start_one_attempt(world: World) -> None:
    world.submit()
    first_asked, second_done = threading.Event(), threading.Event()
    results: list[int] = []
    lock = threading.Lock()

    def result(session_id: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with lock:
            results.append(1)
            first = len(results) == 1
        if first:
            # The first pass is slow here: its lease runs out and the second takes the job.
            first_asked.set()
            assert second_done.wait(30)
        return unknown(session_id, payload)

    world.agent.handlers["result"] = result
    world.agent.handlers["resume"] = running(0)
    # A lease this short has run out by the time the first pass has its answer.
    slow = replace(world.services, settings=replace(world.services.settings, lease_s=0.001))
    reports: list[TickReport] = []
    first_pass = threading.Thread(target=lambda: reports.append(world.tick(slow)))
    first_pass.start()
    try:
        assert first_asked.wait(30)
        second = world.tick()
    finally:
        second_done.set()
        first_pass.join(30)

    assert second.steps == {JOB: "running"}
    assert reports[0].steps == {JOB: "conflict"}
    assert len(world.agent.sent("resume")) == 1
    record = world.record()
    assert record.attempt == 2 and not record.resume_pending
    assert _types(world.events()) == ["session_lost", "resumed"]


# History and notifications


def test_a_job_that_took_two_attempts_says_so_in_its_one_notification(world: World) -> None:
    world.submit()
    world.agent.handlers["resume"] = running(0)
    world.tick()
    world.agent.handlers["result"] = finished(status="SUCCEEDED", result=42, attempt=2)

    world.tick()
    world.tick()

    record = world.record()
    assert record.status == JobStatus.SUCCEEDED and record.attempt == 2
    [note] = world.notifications()
    assert (note["attempt"], note["max_attempts"]) == (2, 3)
    assert "took 2 attempts" in Notification.from_record(record).email_text()
    assert _types(world.events()) == ["session_lost", "resumed", "ended", "notified"]
    ended = world.events()[2]
    assert ended.detail == {"status": "SUCCEEDED"} and ended.attempt == 2


def test_an_attempt_retried_in_the_agent_is_recorded_at_the_jobs_end(world: World) -> None:
    world.submit()
    world.agent.handlers["result"] = finished(status="SUCCEEDED", result=1, attempt=3)

    world.tick()

    record = world.record()
    assert record.attempt == 3
    [note] = world.notifications()
    assert note["attempt"] == 3


def test_a_first_attempt_success_says_nothing_of_attempts_in_the_email(world: World) -> None:
    world.submit()
    world.agent.handlers["result"] = finished(status="SUCCEEDED", result=1)

    world.tick()

    record = world.record()
    assert "attempts" not in Notification.from_record(record).email_text()
    [note] = world.notifications()
    assert (note["attempt"], note["max_attempts"]) == (1, 3)


def test_a_job_not_resumable_has_no_attempts_in_its_notification(world: World) -> None:
    world.submit(resumable=False, max_attempts=1)
    world.agent.handlers["result"] = finished(status="SUCCEEDED", result=1)

    world.tick()

    [note] = world.notifications()
    assert "attempt" not in note and "max_attempts" not in note


def test_a_history_table_that_refuses_events_never_stops_a_transition(world: World) -> None:
    world.submit()
    world.session.client("dynamodb").delete_table(TableName=world.events_table)
    world.agent.handlers["resume"] = running(0)

    report = world.tick()

    assert report.counts[Metric.JOBS_RESUMED] == 1
    assert report.counts[Metric.EVENTS_DROPPED] == 2
    assert world.record().attempt == 2


def test_without_a_history_table_the_poller_writes_no_events(world: World) -> None:
    env = dict(world.services.settings.environment)
    del env["EVENTS_TABLE"]
    quiet = replace(world.services, settings=PollerSettings.from_env(env), events=None)
    world.submit()
    world.agent.handlers["resume"] = running(0)

    report = world.tick(quiet)

    assert report.counts[Metric.JOBS_RESUMED] == 1
    assert report.counts[Metric.EVENTS_DROPPED] == 0
    assert world.events() == []


# Settings


REQUIRED = {
    "JOBS_TABLE": "t",
    "RESULTS_BUCKET": "b",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:1:x",
    "AGENT_RUNTIME_ARN": "arn:aws:bedrock-agentcore:us-east-1:1:runtime/x",
}


def test_durable_settings_default_to_agentcores_lifetime_and_no_history() -> None:
    settings = PollerSettings.from_env(REQUIRED)
    assert settings.session_max_lifetime_s == 28_800
    assert settings.handoff_margin_s == 900
    assert settings.events_table is None
    tuned = PollerSettings.from_env(
        {**REQUIRED, "EVENTS_TABLE": "h", "POLLER_SESSION_MAX_LIFETIME_S": "600"}
        | {"POLLER_HANDOFF_MARGIN_S": "120"}
    )
    assert PollerSettings.from_env(tuned.environment) == tuned


def test_a_short_session_lifetime_gets_a_margin_of_a_quarter_of_it_by_default() -> None:
    local = PollerSettings.from_env({**REQUIRED, "POLLER_SESSION_MAX_LIFETIME_S": "40"})
    assert (local.session_max_lifetime_s, local.handoff_margin_s) == (40, 10)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"POLLER_SESSION_MAX_LIFETIME_S": "0.5"}, "POLLER_SESSION_MAX_LIFETIME_S"),
        ({"POLLER_SESSION_MAX_LIFETIME_S": "28801"}, "POLLER_SESSION_MAX_LIFETIME_S"),
        ({"POLLER_HANDOFF_MARGIN_S": "-1"}, "POLLER_HANDOFF_MARGIN_S"),
        ({"POLLER_HANDOFF_MARGIN_S": "soon"}, "POLLER_HANDOFF_MARGIN_S"),
        (
            {"POLLER_SESSION_MAX_LIFETIME_S": "600", "POLLER_HANDOFF_MARGIN_S": "600"},
            "POLLER_HANDOFF_MARGIN_S=600 is not shorter than POLLER_SESSION_MAX_LIFETIME_S",
        ),
    ],
)
def test_bad_durable_settings_are_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(PollerSettingsError, match=named):
        PollerSettings.from_env({**REQUIRED, **env})
