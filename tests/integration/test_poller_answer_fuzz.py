"""Hypothesis over the bodies an agent might answer a poll with, through the poller's real
reconcile against moto: never an unhandled error; the job ends (recorded, notified once, its
text within bounds) or waits for the next tick. Any Unicode, lone surrogates included, and
text far past every bound."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from hypothesis import example, given
from hypothesis import strategies as st

from agentjobs import limits
from agentjobs.protocol import JobStatus, format_time, parse_time, utc_now
from agentjobs.record import JobRecord, Progress, new_job_id
from emulator.resources import LocalResources
from emulator.stack.schedule import LambdaContext
from jobpoller.events import process_event
from jobpoller.services import PollerServices, services_from_clients
from testbed.aws import REGION, MotoEndpoint
from testbed.inbox import drain_inbox
from testbed.poller import poller_settings
from tests.support.fuzzing import fuzz_settings, soak
from tests.support.hostile_text import hostile_text
from tests.support.wire import RawBody

STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN", "DONE"]
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "LOST"}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | hostile_text
    | st.sampled_from(STATUSES)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def answer_for(job_id: str) -> st.SearchStrategy[dict[str, Any]]:
    """Answers shaped like the protocol's, with any value where it hurts."""
    return st.fixed_dictionaries(
        {"status": st.sampled_from(STATUSES) | values},
        optional={
            "job_id": st.just(job_id) | values,
            "progress": st.fixed_dictionaries({"percent": values, "message": values}) | values,
            "result": values,
            "result_uri": st.sampled_from(["s3://nowhere/k", "http://x"]) | values,
            "error": st.fixed_dictionaries({"code": values, "message": values}) | values,
            "finished_at": st.sampled_from([utc_now(), "yesterday", ""]) | values,
        },
    )


@dataclass
class Rig:
    """A poller over moto whose AgentCore answers are whatever the test sets: the AgentCore
    endpoint is the fake, at the transport; all of the poller's own code runs."""

    moto: MotoEndpoint
    resources: LocalResources
    services: PollerServices
    ddb: Any
    status: int = 200
    body: bytes = b""
    error_type: str | None = None

    def answer(self, request: Any, event_name: str, **_: Any) -> AWSResponse:
        if event_name.endswith("StopRuntimeSession"):
            return AWSResponse(request.url, 200, {}, RawBody(b"{}"))
        headers = {"Content-Type": "application/json", "Content-Length": str(len(self.body))}
        if self.error_type:
            headers["x-amzn-ErrorType"] = self.error_type
        return AWSResponse(request.url, self.status, headers, RawBody(self.body))

    def reconcile_with_answer(self, status: int, body: bytes) -> tuple[str, dict[str, Any], Any]:
        """A fresh RUNNING job, one reconcile of it whose poll gets `body` back (`{job}` in it
        replaced by the job's id); the job id, its record after, and the pass report."""
        job_id = new_job_id()
        self.status, self.body = status, body.replace(b"{job}", job_id.encode())
        now = utc_now()
        self.services.store.create_running(
            JobRecord(
                job_id=job_id,
                session_id=f"fuzz-session-{uuid.uuid4().hex}",
                kind="synthetic",
                status=JobStatus.RUNNING,
                submitted_at=now,
                updated_at=now,
                max_runtime_s=3600,
                deadline_at=format_time(parse_time(now) + timedelta(hours=1)),
                progress=Progress(0.0, "accepted"),
            )
        )
        report = process_event({"job_ids": [job_id]}, LambdaContext(30, REGION), self.services)
        item = self.ddb.get_item(
            TableName=self.resources.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )["Item"]
        return job_id, item, report


@pytest.fixture(scope="module")
def rig(moto: MotoEndpoint) -> Rig:
    resources = moto.create_resources()
    agentcore = moto.client("bedrock-agentcore")
    ddb = moto.client("dynamodb")
    services = services_from_clients(
        poller_settings(resources),
        dynamodb=ddb,
        s3=moto.client("s3"),
        sns=moto.client("sns"),
        agentcore=agentcore,
    )
    fuzz = Rig(moto, resources, services, ddb)
    agentcore.meta.events.register("before-send.bedrock-agentcore", fuzz.answer)
    return fuzz


def _text(item: dict[str, Any], *path: str) -> str:
    node: Any = item
    for key in path:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, str) else ""


def _assert_handled(rig: Rig, job_id: str, item: dict[str, Any], report: Any) -> None:
    step = report.steps.get(job_id)
    shown = str(item)[:800]  # a record holding a hostile answer's text can be huge
    # "retry" is what an exception escaping reconcile (or a failed AWS call) ends in: with a
    # healthy moto, it means the answer broke the poller.
    assert step in {"running", "closed"}, (step, shown)
    status = item["status"]["S"]
    progress = _text(item, "progress", "M", "message", "S")
    assert len(progress) <= limits.MAX_PROGRESS_MESSAGE_CHARS, (len(progress), shown)
    poll_error = _text(item, "last_poll_error", "S")
    assert len(poll_error) <= limits.MAX_POLL_ERROR_CHARS, (len(poll_error), shown)
    if status == "RUNNING":
        assert "lease_holder" not in item, shown  # released: the next tick can take it
        return
    assert status in TERMINAL and "notified_at" in item and "attention" not in item, shown
    message = _text(item, "error", "M", "message", "S")
    assert len(message) <= limits.MAX_ERROR_MESSAGE_CHARS, (len(message), shown)
    notes = drain_inbox(rig.moto.client("sqs"), rig.resources.inbox_queue_url)
    mine = [n for n in notes if n["document"].get("job_id") == job_id]
    assert [n["document"].get("status") for n in mine] == [status], (mine, shown)


# Each example is one poller pass in this process against moto (about a tenth of a second):
# `make test` runs a third of the former count beside the pinned cases, the slow run a soak.
@fuzz_settings(25)
@given(data=st.data())
@example(data=None)
def test_any_answer_object_is_handled(rig: Rig, data: st.DataObject | None) -> None:
    _answer_object_is_handled(rig, data)


@soak(300)
@given(data=st.data())
def test_many_answer_objects_are_handled(rig: Rig, data: st.DataObject) -> None:
    _answer_object_is_handled(rig, data)


def _answer_object_is_handled(rig: Rig, data: st.DataObject | None) -> None:
    if data is None:
        body = b'{"status": "SUCCEEDED", "result": 1e999}'
    else:
        value = data.draw(answer_for("JOB"))
        body = json.dumps(value).replace('"JOB"', '"{job}"').encode()
    job_id, item, report = rig.reconcile_with_answer(200, body)
    _assert_handled(rig, job_id, item, report)


@fuzz_settings(15)
@given(body=st.binary(max_size=200))
@example(body=b"[" * 50_000)
@example(body=b'{"status": "RUNNING", "progress": {"percent": NaN}}')
@example(body=b'{"status": "SUCCEEDED", "result": {"x": -Infinity}}')
@example(
    body=b'{"job_id": "{job}", "status": "FAILED", "error": {"code": "JOB_FAILED", '
    b'"message": "' + b"e" * 200_000 + b'"}}'
)
@example(
    body=b'{"job_id": "{job}", "status": "FAILED", "error": {"code": "JOB_FAILED", '
    b'"message": "' + b"e" * 420_000 + b'"}}'
)
@example(
    body=b'{"job_id": "{job}", "status": "FAILED", "error": {"code": "\\ud800", '
    b'"message": "bad \\udfff text"}}'
)
@example(
    body=b'{"job_id": "{job}", "status": "RUNNING", "progress": {"percent": 5, '
    b'"message": "' + b"p" * 50_000 + b'"}}'
)
@example(
    body=b'{"job_id": "{job}", "status": "RUNNING", "progress": {"percent": 5, '
    b'"message": "\\ud800"}}'
)
@example(body=b'{"job_id": "{job}", "status": "SUCCEEDED", "result": {"text": "\\ud800"}}')
def test_any_answer_bytes_are_handled(rig: Rig, body: bytes) -> None:
    _answer_bytes_are_handled(rig, body)


@soak(200)
@given(body=st.binary(max_size=200))
def test_many_answer_bytes_are_handled(rig: Rig, body: bytes) -> None:
    _answer_bytes_are_handled(rig, body)


def _answer_bytes_are_handled(rig: Rig, body: bytes) -> None:
    # The agent's body reaches the caller only with HTTP 200: AgentCore turns an agent's
    # 4xx/5xx into its own RuntimeClientError (below).
    job_id, item, report = rig.reconcile_with_answer(200, body)
    _assert_handled(rig, job_id, item, report)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
        (404, "ResourceNotFoundException"),
        (409, "RetryableConflictException"),
        (424, "RuntimeClientError"),
        (429, "ThrottlingException"),
        (500, "InternalServerException"),
        (503, "ServiceUnavailable"),
    ],
)
def test_every_agentcore_error_is_handled(rig: Rig, status: int, code: str) -> None:
    rig.error_type = code
    try:
        job_id, item, report = rig.reconcile_with_answer(status, b'{"message": "chaos"}')
    finally:
        rig.error_type = None
    _assert_handled(rig, job_id, item, report)
