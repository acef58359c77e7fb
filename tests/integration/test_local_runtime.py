"""The local AgentCore runtime through boto3 (raw HTTP where boto3 refuses): calls and errors."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil
import pytest

from testbed.local_runtime import (
    RUNTIME_ARN,
    RuntimeProcess,
    agent_cmd,
    local_runtime,
    new_session_id,
)

RUNTIME_ID = RUNTIME_ARN.rsplit("/", 1)[1]
ACCOUNT = "123456789012"
# Past a slow-start agent's start (an SDK agent's imports and its 1 s sleep) on a loaded machine.
STARTUP_TIMEOUT_S = 4


@pytest.fixture(scope="module")
def runtime() -> Iterator[RuntimeProcess]:
    """One runtime for the module; a session id picks its agent (tests/agents/by_session.py)."""
    with local_runtime(
        agent_cmd_line=agent_cmd("by_session"),
        startup_timeout_s=STARTUP_TIMEOUT_S,
        env={"SLOW_START_S": "1"},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def echo_session(runtime: RuntimeProcess) -> str:
    """One echo agent's session for the tests whose point is not a fresh process: each
    process start costs about half a CPU-second."""
    session_id = new_session_id()
    runtime.invoke(session_id, {})
    return session_id


def session_as(agent: str) -> str:
    """A session id that makes by_session.py run `agent`."""
    return f"test-as-{agent}-{uuid.uuid4()}"


def invocations_url(runtime: RuntimeProcess, ref: str = RUNTIME_ARN, query: str = "") -> str:
    quoted = urllib.parse.quote(ref, safe="")
    return f"{runtime.url}/runtimes/{quoted}/invocations{query}"


def test_invoke_answers_with_agent_body_and_session_headers(
    runtime: RuntimeProcess, echo_session: str
) -> None:
    session_id = echo_session
    answer = runtime.client().invoke_agent_runtime(
        agentRuntimeArn=RUNTIME_ARN,
        runtimeSessionId=session_id,
        qualifier="DEFAULT",
        payload=json.dumps({"prompt": "hello"}).encode(),
        contentType="application/json",
        accept="application/json",
        traceId="Root=1-5759e988-bd862e3fe1be46a994272793",
    )
    body = json.loads(answer["response"].read())
    assert answer["statusCode"] == 200
    assert answer["runtimeSessionId"] == session_id
    assert answer["contentType"] == "application/json"
    assert answer["traceId"] == "Root=1-5759e988-bd862e3fe1be46a994272793"
    assert answer["ResponseMetadata"]["RequestId"]
    assert body["echo"] == {"prompt": "hello"}
    assert body["session_id"] == session_id
    assert body["headers"]["x-amzn-bedrock-agentcore-runtime-request-id"]


def test_invoke_by_agent_id_and_account_id(runtime: RuntimeProcess, echo_session: str) -> None:
    answer = runtime.client().invoke_agent_runtime(
        agentRuntimeArn=RUNTIME_ID,
        accountId=ACCOUNT,
        runtimeSessionId=echo_session,
        payload=b'{"n": 1}',
    )
    assert json.loads(answer["response"].read())["echo"] == {"n": 1}


def test_invocations_of_one_session_reach_one_process(runtime: RuntimeProcess) -> None:
    session_id = new_session_id()
    first = runtime.invoke(session_id, {"n": 1})
    second = runtime.invoke(session_id, {"n": 2})
    assert second["pid"] == first["pid"]
    assert second["calls"] == 2


def test_unmodified_sdk_agents_on_port_8080_run_side_by_side(runtime: RuntimeProcess) -> None:
    # echo_agent.py calls app.run() with no port: the runtime moves each one to its own port.
    sessions = [new_session_id(), new_session_id()]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda s: runtime.invoke(s, {"who": s}), sessions))
    assert answers[0]["pid"] != answers[1]["pid"]
    listed = runtime.sessions()
    urls = {listed[s]["agentUrl"] for s in sessions}
    assert len(urls) == 2
    assert not any(url.endswith(":8080") for url in urls)


def test_forwards_aws_headers_and_drops_the_rest(
    runtime: RuntimeProcess, echo_session: str
) -> None:
    session_id = echo_session
    answer = httpx.post(
        invocations_url(runtime, query="?qualifier=DEFAULT"),
        content=b'{"x": 1}',
        headers={
            "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": session_id,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": "Bearer local-token",
            "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tenant": "acme",
            "X-Amzn-Trace-Id": "Root=1-abc",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "vendor=1",
            "baggage": "user=alice",
            "Mcp-Session-Id": "mcp-1",
            "X-Not-Forwarded": "secret",
        },
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.headers["x-amzn-bedrock-agentcore-runtime-session-id"] == session_id
    seen = answer.json()["headers"]
    assert seen["x-amzn-bedrock-agentcore-runtime-session-id"] == session_id
    assert seen["x-amzn-bedrock-agentcore-runtime-custom-tenant"] == "acme"
    assert seen["authorization"] == "Bearer local-token"
    for name in ("x-amzn-trace-id", "traceparent", "tracestate", "baggage", "mcp-session-id"):
        assert name in seen
    assert "x-not-forwarded" not in seen


def test_streamed_answer_reaches_boto3_as_server_sent_events(runtime: RuntimeProcess) -> None:
    answer = runtime.client().invoke_agent_runtime(
        agentRuntimeArn=RUNTIME_ARN,
        runtimeSessionId=session_as("streaming_agent"),
        payload=json.dumps({"events": 3}).encode(),
    )
    assert answer["contentType"].startswith("text/event-stream")
    lines = [line for line in answer["response"].iter_lines() if line.startswith(b"data: ")]
    assert [json.loads(line[len(b"data: ") :])["event"] for line in lines] == [0, 1, 2]


def test_streamed_events_arrive_before_the_agent_sends_the_last(runtime: RuntimeProcess) -> None:
    # boto3's iter_lines reads 1 KiB blocks, so the arrival of each event is watched with httpx.
    events: list[tuple[float, dict[str, Any]]] = []
    with httpx.stream(
        "POST",
        invocations_url(runtime),
        content=json.dumps({"events": 3, "gap_s": 0.5}).encode(),
        headers={"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": session_as("streaming_agent")},
        timeout=30,
    ) as answer:
        assert answer.status_code == 200
        for line in answer.iter_lines():
            if line.startswith("data: "):
                events.append((time.time(), json.loads(line[len("data: ") :])))
    assert [event["event"] for _, event in events] == [0, 1, 2]
    first_received_at = events[0][0]
    last_sent_at = events[-1][1]["sent_at"]
    assert first_received_at < last_sent_at  # passed through as it arrived, not buffered


def test_stop_ends_the_process_and_the_next_invoke_starts_a_fresh_one(
    runtime: RuntimeProcess,
) -> None:
    session_id = new_session_id()
    client = runtime.client()
    before = runtime.invoke(session_id, {"n": 1})
    stopped = client.stop_runtime_session(
        agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id, qualifier="DEFAULT"
    )
    assert stopped["statusCode"] == 200
    assert stopped["runtimeSessionId"] == session_id
    assert not psutil.pid_exists(before["pid"]) or (
        psutil.Process(before["pid"]).status() == psutil.STATUS_ZOMBIE
    )
    assert runtime.sessions()[session_id]["state"] == "Stopped"
    after = runtime.invoke(session_id, {"n": 2})
    assert after["pid"] != before["pid"]
    assert after["calls"] == 1  # the old process's memory is gone


def test_stop_of_unknown_or_stopped_session_is_resource_not_found(runtime: RuntimeProcess) -> None:
    client = runtime.client()
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.stop_runtime_session(agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=new_session_id())
    session_id = new_session_id()
    runtime.invoke(session_id, {})
    client.stop_runtime_session(agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.stop_runtime_session(agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id)


def test_agent_error_status_is_runtime_client_error_with_aws_text(runtime: RuntimeProcess) -> None:
    client = runtime.client()
    with pytest.raises(client.exceptions.RuntimeClientError) as caught:
        client.invoke_agent_runtime(
            agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_as("error_agent"), payload=b"{}"
        )
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["Error"]["Message"] == (
        "Received error (500) from runtime. Please check your CloudWatch logs for more information."
    )


def test_agent_crashing_at_start_is_runtime_client_error_and_leaves_nothing(
    runtime: RuntimeProcess, echo_session: str
) -> None:
    client = runtime.client()
    session_id = session_as("crash_agent")
    with pytest.raises(client.exceptions.RuntimeClientError) as caught:
        client.invoke_agent_runtime(
            agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id, payload=b"{}"
        )
    assert "exited with code 3" in caught.value.response["Error"]["Message"]
    assert runtime.sessions()[session_id]["state"] == "Stopped"
    assert _processes_of_session(runtime, session_id) == []
    assert runtime.invoke(echo_session, {"still": "serving"})["echo"] == {"still": "serving"}


def test_agent_never_answering_ping_is_runtime_client_error_and_leaves_nothing(
    runtime: RuntimeProcess, echo_session: str
) -> None:
    client = runtime.client()
    session_id = session_as("hang_agent")
    with pytest.raises(client.exceptions.RuntimeClientError) as caught:
        client.invoke_agent_runtime(
            agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id, payload=b"{}"
        )
    assert caught.value.response["Error"]["Message"] == (
        "Runtime initialization time exceeded. "
        f"Please make sure that initialization completes in {STARTUP_TIMEOUT_S}s."
    )
    assert _processes_of_session(runtime, session_id) == []
    assert runtime.invoke(echo_session, {"still": "serving"})["echo"] == {"still": "serving"}


def test_second_call_while_session_starts_is_retryable_conflict(runtime: RuntimeProcess) -> None:
    client = runtime.client()
    session_id = session_as("slow_start_agent")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(runtime.invoke, session_id, {"n": 1})
        while session_id not in runtime.sessions():
            time.sleep(0.02)
        with pytest.raises(client.exceptions.RetryableConflictException) as caught:
            client.invoke_agent_runtime(
                agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id, payload=b"{}"
            )
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
        assert first.result()["echo"] == {"n": 1}


def test_boto3_default_retries_ride_over_a_starting_session(runtime: RuntimeProcess) -> None:
    session_id = session_as("slow_start_agent")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(runtime.invoke, session_id, {"n": 1})
        while session_id not in runtime.sessions():
            time.sleep(0.02)
        # RetryableConflictException is modelled retryable: standard mode retries it.
        answer = runtime.client(attempts=10).invoke_agent_runtime(
            agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id, payload=b'{"n": 2}'
        )
        assert json.loads(answer["response"].read())["echo"] == {"n": 2}
        first.result()


@pytest.mark.parametrize(
    "arguments",
    [
        {"agentRuntimeArn": "arn:aws:bedrock-agentcore:us-east-1:123:runtime/x", "payload": b"{}"},
        {"agentRuntimeArn": "not an arn or id", "payload": b"{}"},
        {"agentRuntimeArn": RUNTIME_ID, "payload": b"{}"},  # an id needs accountId
        {"agentRuntimeArn": RUNTIME_ARN, "payload": b"{}", "qualifier": "no spaces allowed"},
        {"agentRuntimeArn": RUNTIME_ARN, "payload": b"{}", "runtimeSessionId": "s" * 257},
    ],
    ids=["short-account", "garbage", "id-without-account", "bad-qualifier", "long-session"],
)
def test_malformed_requests_are_validation_exceptions(
    runtime: RuntimeProcess, arguments: dict[str, Any]
) -> None:
    client = runtime.client()
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.invoke_agent_runtime(**arguments)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": "too-short"}],
    ids=["missing", "short"],
)
def test_missing_or_short_session_id_is_validation_exception_on_the_wire(
    runtime: RuntimeProcess, headers: dict[str, str]
) -> None:
    # boto3 refuses these client-side, so the server side is checked with raw HTTP.
    for url in (
        invocations_url(runtime),
        invocations_url(runtime).replace("invocations", "stopruntimesession"),
    ):
        answer = httpx.post(url, content=b"{}", headers=headers, timeout=10)
        assert answer.status_code == 400
        assert answer.headers["x-amzn-errortype"] == "ValidationException"
        assert "runtimeSessionId" in answer.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/runtimes/x/invocations"),
        ("POST", "/runtimes/x/invoke"),
        ("POST", "/nothing/here"),
        ("PUT", "/sessions"),
        ("GET", "/"),
    ],
)
def test_unknown_paths_and_methods_are_unknown_operation(
    runtime: RuntimeProcess, method: str, path: str
) -> None:
    answer = httpx.request(method, f"{runtime.url}{path}", timeout=10)
    assert answer.status_code == 404
    assert answer.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert answer.json()["message"]


def test_payload_over_100_mb_is_validation_exception(runtime: RuntimeProcess) -> None:
    client = runtime.client(read_timeout_s=120)
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.invoke_agent_runtime(
            agentRuntimeArn=RUNTIME_ARN,
            runtimeSessionId=new_session_id(),
            payload=b"x" * 100_000_001,
        )
    assert "payload" in caught.value.response["Error"]["Message"]


ERROR_CLASSES = [
    ("ValidationException", 400),
    ("UnauthorizedException", 401),
    ("ServiceQuotaExceededException", 402),
    ("AccessDeniedException", 403),
    ("ResourceNotFoundException", 404),
    ("ConflictException", 409),
    ("RetryableConflictException", 409),
    ("RuntimeClientError", 424),
    ("ThrottlingException", 429),
    ("InternalServerException", 500),
]


@pytest.mark.parametrize(("error", "status"), ERROR_CLASSES)
@pytest.mark.parametrize("operation", ["InvokeAgentRuntime", "StopRuntimeSession"])
def test_each_aws_error_reaches_boto3_as_its_class(
    runtime: RuntimeProcess, error: str, status: int, operation: str
) -> None:
    session_id = new_session_id()
    injected = httpx.post(
        f"{runtime.url}/faults",
        json={"error": error, "operation": operation, "sessionId": session_id, "message": "boom"},
        timeout=10,
    )
    assert injected.status_code == 200
    client = runtime.client()
    with pytest.raises(getattr(client.exceptions, error)) as caught:
        if operation == "InvokeAgentRuntime":
            client.invoke_agent_runtime(
                agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id, payload=b"{}"
            )
        else:
            client.stop_runtime_session(agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id)
    assert caught.value.response["Error"]["Code"] == error
    assert caught.value.response["Error"]["Message"] == "boom"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_sessions_listing_has_the_documented_shape(
    runtime: RuntimeProcess, echo_session: str
) -> None:
    session_id = echo_session
    runtime.invoke(session_id, {})
    listed = runtime.sessions()[session_id]
    assert set(listed) == {
        "sessionId",
        "state",
        "ping",
        "agentUrl",
        "pid",
        "createdAt",
        "lastActivityAt",
    }
    assert listed["state"] == "Idle"
    assert listed["ping"] == "Healthy"
    assert listed["agentUrl"].startswith("http://127.0.0.1:")
    assert listed["pid"] == runtime.session_processes(session_id)[0].pid
    assert listed["createdAt"].endswith("Z")


def _processes_of_session(runtime: RuntimeProcess, session_id: str) -> list[psutil.Process]:
    return runtime.session_processes(session_id)
