"""The poller's AgentCore adapter over a real botocore client answered at its HTTP transport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from agentjobs.protocol import SESSION_ID_HEADER
from jobpoller.agentcore import (
    Busy,
    Replied,
    RuntimeClient,
    StopSessionError,
    Unreachable,
    agentcore_client,
)
from jobpoller.settings import PollerSettings
from tests.support.wire import RawBody

RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/unit-agent"
SESSION = "unit-session-0000000000000000000000001"
Transport = Callable[[Any], AWSResponse]
"""What the data plane answers one HTTP request (or raises, as a failed connection does)."""


def _answer(request: Any, status: int, body: bytes, error: str | None = None) -> AWSResponse:
    headers = {"Content-Type": "application/json", SESSION_ID_HEADER: SESSION}
    if error is not None:
        headers["x-amzn-ErrorType"] = error
    return AWSResponse(str(request.url), status, headers, RawBody(body))


def _refusal(code: str, status: int) -> Transport:
    body = json.dumps({"message": "refused"}).encode()
    return lambda request: _answer(request, status, body, code)


class Plane:
    """The transport: the requests sent, and what the next one gets."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.transport: Transport = lambda request: _answer(request, 200, b"{}")

    def before_send(self, request: Any, **_: Any) -> AWSResponse:
        self.requests.append(request)
        return self.transport(request)


@pytest.fixture
def plane(monkeypatch: pytest.MonkeyPatch) -> Plane:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return Plane()


@pytest.fixture
def runtime(plane: Plane) -> RuntimeClient:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    settings = PollerSettings.from_env(
        {
            "JOBS_TABLE": "jobs",
            "RESULTS_BUCKET": "results",
            "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:jobs",
            "AGENT_RUNTIME_ARN": RUNTIME_ARN,
        }
    )
    client = agentcore_client(session, settings)
    client.meta.events.register("before-send.bedrock-agentcore", plane.before_send)
    return RuntimeClient(client, RUNTIME_ARN)


def test_an_answer_is_replied_with_its_bytes_and_the_payload_sent_as_json(
    runtime: RuntimeClient, plane: Plane
) -> None:
    body = b'{"job_id": "j1", "status": "RUNNING"}'
    plane.transport = lambda request: _answer(request, 200, body)

    reply = runtime.ask(SESSION, {"action": "status", "job_id": "j1"})

    assert reply == Replied(body)
    [request] = plane.requests
    assert json.loads(request.body) == {"action": "status", "job_id": "j1"}
    assert request.headers[SESSION_ID_HEADER] in (SESSION, SESSION.encode())
    assert "qualifier=DEFAULT" in str(request.url)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("RetryableConflictException", 409),
        ("ThrottlingException", 429),
        ("ServiceQuotaExceededException", 402),
    ],
)
def test_a_refusal_for_now_is_busy_and_asked_once(
    runtime: RuntimeClient, plane: Plane, code: str, status: int
) -> None:
    plane.transport = _refusal(code, status)

    assert runtime.ask(SESSION, {"action": "result", "job_id": "j1"}) == Busy(code)
    assert len(plane.requests) == 1  # never retried by botocore: a retry is a second invocation


@pytest.mark.parametrize(
    ("code", "status"),
    [("RuntimeClientError", 424), ("ResourceNotFoundException", 404)],
)
def test_any_other_refusal_is_unreachable_naming_code_and_status(
    runtime: RuntimeClient, plane: Plane, code: str, status: int
) -> None:
    plane.transport = _refusal(code, status)

    reply = runtime.ask(SESSION, {"action": "result", "job_id": "j1"})

    assert reply == Unreachable(f"InvokeAgentRuntime failed: {code} (HTTP {status})")


def test_a_timeout_is_unreachable_naming_only_its_kind(
    runtime: RuntimeClient, plane: Plane
) -> None:
    def time_out(request: Any) -> AWSResponse:
        raise ReadTimeoutError(endpoint_url=str(request.url))

    plane.transport = time_out

    reply = runtime.ask(SESSION, {"action": "result", "job_id": "j1"})

    assert reply == Unreachable("InvokeAgentRuntime failed: ReadTimeoutError")
    assert len(plane.requests) == 1


def test_a_success_status_other_than_200_is_unreachable(
    runtime: RuntimeClient, plane: Plane
) -> None:
    plane.transport = lambda request: _answer(request, 202, b"{}")

    reply = runtime.ask(SESSION, {"action": "result", "job_id": "j1"})

    assert reply == Unreachable("InvokeAgentRuntime answered HTTP 202")


def test_stopping_a_session_says_whether_it_was_running(
    runtime: RuntimeClient, plane: Plane
) -> None:
    plane.transport = lambda request: _answer(request, 200, b"{}")
    assert runtime.stop_session(SESSION) is True

    plane.transport = _refusal("ResourceNotFoundException", 404)
    assert runtime.stop_session(SESSION) is False

    plane.transport = _refusal("InternalServerException", 500)
    with pytest.raises(StopSessionError, match="StopRuntimeSession failed: InternalServer"):
        runtime.stop_session(SESSION)
