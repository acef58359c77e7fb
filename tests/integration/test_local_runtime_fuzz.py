"""Hypothesis over the local AgentCore runtime's HTTP API with raw HTTP: any path, method,
header and body gets an AWS-shaped answer, never a 5xx of our own, never a traceback; any
session id (any Unicode, around its length bounds, path-shaped) logs only inside its folder."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from agentjobs import limits
from testbed.local_runtime import RUNTIME_ARN, RuntimeProcess, local_runtime
from tests.support.fuzzing import PROCESS_EXAMPLES, fuzz_settings, soak
from tests.support.hostile_text import text_near

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
# A few valid session ids only: each new one starts an agent process.
SESSIONS = [f"fuzz-session-{n:024d}" for n in range(3)]
ARN_PATH = quote(RUNTIME_ARN, safe="")
# 424 is AWS's answer when the agent itself fails (RuntimeClientError), not ours.
NOT_OURS = {424}

printable = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=40
)
segment = printable.map(lambda s: quote(s, safe="")) | st.sampled_from(
    ["runtimes", ARN_PATH, "invocations", "stopruntimesession", "sessions", "faults", "%", "%zz"]
)
paths = st.lists(segment, min_size=0, max_size=5).map(lambda parts: "/" + "/".join(parts))
queries = st.dictionaries(
    st.sampled_from(["qualifier", "accountId", "x"]), printable, max_size=3
).map(lambda q: "&".join(f"{k}={quote(v, safe='')}" for k, v in q.items()))
session_ids = (
    st.sampled_from(SESSIONS) | printable | st.text(alphabet="abc-", min_size=200, max_size=300)
)
headers = st.dictionaries(
    st.sampled_from(
        [
            SESSION_HEADER,
            "Content-Type",
            "Accept",
            "X-Amzn-Trace-Id",
            "traceparent",
            "Mcp-Session-Id",
        ]
    ),
    printable,
    max_size=4,
)
bodies = st.binary(max_size=300) | st.sampled_from(
    [
        b'{"action": "status"}',
        b'{"error": "RuntimeClientError", "count": "x"}',
        b'{"error": "NoSuchError"}',
        b"[]",
    ]
)


@pytest.fixture(scope="module")
def runtime() -> Iterator[RuntimeProcess]:
    with local_runtime("echo_agent", idle_timeout_s=5) as running:
        yield running


def send(
    runtime: RuntimeProcess, method: str, path: str, head: Mapping[str, str | bytes], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request; the status, headers and body of the answer."""
    address = urlsplit(runtime.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=head)
        answer = connection.getresponse()
        head_lower = {k.lower(): v for k, v in answer.getheaders()}
        return answer.status, head_lower, answer.read()
    finally:
        connection.close()


def assert_aws_shaped(status: int, head: dict[str, str], body: bytes) -> None:
    assert status < 500 or status in NOT_OURS, (status, body[:300])
    assert b"Traceback" not in body
    if status >= 400:
        assert head.get("x-amzn-errortype"), (status, head, body[:300])
        message = json.loads(body).get("message")
        assert isinstance(message, str) and message, body[:300]


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
    path=paths,
    query=queries,
    head=headers,
    body=bodies,
)
@example(method="POST", path=f"/runtimes/{ARN_PATH}/invocations", query="", head={}, body=b"{}")
@example(
    method="POST",
    path=f"/runtimes/{ARN_PATH}/invocations",
    query="qualifier=DEFAULT",
    head={SESSION_HEADER: SESSIONS[0], "Content-Type": "application/json"},
    body=b"\xff\xfe not json",
)
@example(method="POST", path="/faults", query="", head={}, body=b'{"error": 1, "count": []}')
@example(method="POST", path="/runtimes/%ff/invocations", query="", head={}, body=b"")
def test_any_request_gets_an_aws_shaped_answer(
    runtime: RuntimeProcess, method: str, path: str, query: str, head: dict[str, str], body: bytes
) -> None:
    status, answer_headers, answer = send(
        runtime, method, path + (f"?{query}" if query else ""), head, body
    )
    if method != "HEAD":
        assert_aws_shaped(status, answer_headers, answer)
    send(runtime, "DELETE", "/faults", {}, b"")  # a fault the example injected hits no other


# A valid new session id starts an agent process (the `abc-` ids do): `make test` runs the
# pinned cases, one of each kind of id, and a few drawn ones; the slow run a soak.
@fuzz_settings(20)
@given(session_id=session_ids, body=bodies, head=headers)
@example(session_id=SESSIONS[0], body=b'{"action": "status"}', head={})
@example(session_id="short", body=b"{}", head={"Content-Type": "application/json"})
@example(session_id="abc-" * 60, body=b"\xff", head={})
def test_invocations_with_any_session_and_body_are_answered(
    runtime: RuntimeProcess, session_id: str, body: bytes, head: dict[str, str]
) -> None:
    _invocation_is_answered(runtime, session_id, body, head)


@soak(120)
@given(session_id=session_ids, body=bodies, head=headers)
def test_many_invocations_with_any_session_and_body_are_answered(
    runtime: RuntimeProcess, session_id: str, body: bytes, head: dict[str, str]
) -> None:
    _invocation_is_answered(runtime, session_id, body, head)


def _invocation_is_answered(
    runtime: RuntimeProcess, session_id: str, body: bytes, head: dict[str, str]
) -> None:
    head = {**head, SESSION_HEADER: session_id}
    status, answer_headers, answer = send(
        runtime, "POST", f"/runtimes/{ARN_PATH}/invocations?qualifier=DEFAULT", head, body
    )
    assert_aws_shaped(status, answer_headers, answer)


# Path-shaped ids climb at most two folders from the agents' log folder, so that even a
# runtime that trusts them writes inside this test's own temporary folder.
hostile_session_ids = (
    text_near("session_id")
    | st.builds(
        lambda up, rest: up + rest,
        st.sampled_from(["../../", "../", "./", "..\\..\\", "%2e%2e/"]),
        st.text(alphabet="abcxyz0123456789-_.", min_size=limits.MIN_SESSION_ID_CHARS),
    )
    | st.sampled_from([f"../../{'x' * 40}", f"..{'y' * 40}", "." * 40, "-" * 40])
)


@pytest.fixture(scope="module")
def logged_runtime(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RuntimeProcess, Path]]:
    root = tmp_path_factory.mktemp("runtime-logs")
    agents = root / "deep" / "agents"
    agents.mkdir(parents=True)
    with local_runtime(
        "echo_agent", idle_timeout_s=2, extra_args=["--agent-log-dir", str(agents)]
    ) as running:
        yield running, root


def _not_a_field_value(header: bytes) -> bool:
    return any((byte < 0x20 and byte != 0x09) or byte == 0x7F for byte in header)


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# Most of these ids are valid, so each starts an agent process: `make test` runs the pinned
# cases and a few drawn ones, the slow run a soak.
@fuzz_settings(PROCESS_EXAMPLES)
@given(session_id=hostile_session_ids)
@example(session_id="../../" + "x" * 40)
@example(session_id="\ud800" * 40)
@example(session_id="s" * (limits.MAX_SESSION_ID_CHARS + 1))
@example(session_id="\u6f22" * limits.MAX_SESSION_ID_CHARS)
# Sent as UTF-8 bytes outside ASCII: the runtime once answered 500 forwarding it to the agent.
@example(session_id="0000000\x80\x80\x80\x80\x80\x80\ud800\U00010000\U00010000")
def test_any_session_id_is_answered_and_logs_only_inside_the_log_folder(
    logged_runtime: tuple[RuntimeProcess, Path], session_id: str
) -> None:
    _logs_only_inside_the_log_folder(logged_runtime, session_id)


@soak(60)
@given(session_id=hostile_session_ids)
def test_many_session_ids_are_answered_and_log_only_inside_the_log_folder(
    logged_runtime: tuple[RuntimeProcess, Path], session_id: str
) -> None:
    _logs_only_inside_the_log_folder(logged_runtime, session_id)


def _logs_only_inside_the_log_folder(
    logged_runtime: tuple[RuntimeProcess, Path], session_id: str
) -> None:
    runtime, root = logged_runtime
    agents = root / "deep" / "agents"
    # A header carries bytes: send the id as UTF-8 where it has a form, else as escapes.
    try:
        header: str | bytes = session_id.encode("utf-8")
    except UnicodeEncodeError:
        header = session_id.encode("utf-8", "backslashreplace")
    # A CR or LF in a header value never leaves an HTTP client (http.client refuses it, as
    # botocore does): no runtime can be sent one, so there is nothing to answer.
    assume(b"\r" not in header and b"\n" not in header)
    before = _files_under(root)
    status, answer_headers, answer = send(
        runtime,
        "POST",
        f"/runtimes/{ARN_PATH}/invocations?qualifier=DEFAULT",
        {SESSION_HEADER: header, "Content-Type": "application/json"},
        b'{"action": "status"}',
    )
    if _not_a_field_value(header):
        # Control characters are not allowed in an HTTP field value (RFC 9110, 5.5): the
        # HTTP server refuses the request before the runtime sees it, with a 4xx.
        assert 400 <= status < 500, (status, answer)
    else:
        assert_aws_shaped(status, answer_headers, answer)
    outside = {p for p in _files_under(root) - before if agents not in p.parents}
    assert not outside, f"session {session_id[:60]!r} wrote {sorted(outside)[:3]}"
