"""The shared wire protocol: which requests parse, and what every refusal says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from agentjobs.limits import MAX_ATTEMPTS, MAX_DURABLE_RUNTIME_S
from agentjobs.protocol import (
    JOB_NAME_PATTERN,
    MAX_CLIENT_TOKEN_CHARS,
    MAX_INPUT_BYTES,
    MAX_RUNTIME_S,
    Action,
    ErrorCode,
    JobQuery,
    JobStatus,
    ProtocolError,
    SubmitRequest,
    error_answer,
    format_time,
    parse_request,
    parse_time,
    utc_now,
)


def _refusal(payload: object) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_request(payload)
    return caught.value


def test_submit_with_every_field_parses() -> None:
    request = parse_request(
        {
            "action": "submit",
            "kind": "synthetic",
            "input": {"seconds": 2},
            "client_token": "abc",
            "max_runtime_s": 60,
        }
    )
    assert request == SubmitRequest(
        kind="synthetic", input={"seconds": 2}, client_token="abc", max_runtime_s=60.0
    )


def test_submit_without_kind_or_input_asks_for_the_agents_default_job() -> None:
    assert parse_request({"action": "submit"}) == SubmitRequest(kind=None, input={})


def test_prompt_without_action_is_a_submit_of_the_default_job() -> None:
    request = parse_request({"prompt": "summarise this"})
    assert request == SubmitRequest(kind=None, input={"prompt": "summarise this"})


@pytest.mark.parametrize("name", ["poem", "a", "Report.v2", "data_report", "x-" + "y" * 62])
def test_any_well_formed_job_name_is_a_kind(name: str) -> None:
    # Kinds are registered by each agent: the protocol knows none of them.
    assert parse_request({"action": "submit", "kind": name}) == SubmitRequest(kind=name)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", 'got ""'),
        ("2fast", "a letter"),
        ("has space", "a letter"),
        ("emoji\u2603", "a letter"),
        ("k" * 65, "at most 64"),
        (7, "a number"),
        (["synthetic"], "an array"),
    ],
)
def test_a_kind_that_is_not_a_job_name_is_refused_naming_the_rule(name: object, says: str) -> None:
    refusal = _refusal({"action": "submit", "kind": name})
    assert refusal.code == ErrorCode.INVALID_REQUEST
    assert "'kind'" in refusal.message and says in refusal.message
    assert not (isinstance(name, str) and JOB_NAME_PATTERN.fullmatch(name))


@pytest.mark.parametrize("action", ["status", "result", "cancel"])
def test_queries_with_and_without_job_id(action: str) -> None:
    assert parse_request({"action": action}) == JobQuery(action=Action(action))
    job_id = "8c5ecfc4a0c14b4491e4c30446acf9e8"
    assert parse_request({"action": action, "job_id": job_id}) == JobQuery(Action(action), job_id)


@pytest.mark.parametrize(
    ("payload", "code", "says"),
    [
        ([1, 2], ErrorCode.INVALID_REQUEST, "got an array"),
        ("submit", ErrorCode.INVALID_REQUEST, "got a string"),
        (None, ErrorCode.INVALID_REQUEST, "got null"),
        ({}, ErrorCode.INVALID_REQUEST, "'prompt'"),
        ({"action": "launch"}, ErrorCode.UNKNOWN_ACTION, '"launch"'),
        ({"action": 3}, ErrorCode.UNKNOWN_ACTION, "a number"),
        ({"action": "submit", "input": [1]}, ErrorCode.INVALID_INPUT, "JSON object"),
        ({"action": "submit", "input": {"x": float("nan")}}, ErrorCode.INVALID_INPUT, "plain"),
        ({"action": "submit", "colour": "red"}, ErrorCode.INVALID_REQUEST, "colour"),
        ({"action": "status", "kind": "agent"}, ErrorCode.INVALID_REQUEST, "kind"),
        ({"action": "status", "job_id": ""}, ErrorCode.INVALID_REQUEST, "non-empty"),
        ({"action": "status", "job_id": 12}, ErrorCode.INVALID_REQUEST, "job_id"),
        ({"action": "status", "job_id": "j" * 129}, ErrorCode.INVALID_REQUEST, "at most"),
        ({"prompt": 5}, ErrorCode.INVALID_REQUEST, "prompt"),
        ({"prompt": "x", "kind": "agent"}, ErrorCode.INVALID_REQUEST, "kind"),
        ({"action": "submit", "client_token": 7}, ErrorCode.INVALID_REQUEST, "client_token"),
        (
            {"action": "submit", "client_token": "t" * (MAX_CLIENT_TOKEN_CHARS + 1)},
            ErrorCode.INVALID_REQUEST,
            "at most",
        ),
    ],
)
def test_malformed_requests_say_what_is_expected(
    payload: object, code: ErrorCode, says: str
) -> None:
    refusal = _refusal(payload)
    assert refusal.code == code
    assert says in refusal.message
    assert refusal.answer() == {"error": {"code": str(code), "message": refusal.message}}


@pytest.mark.parametrize(
    "value", [0, -1, MAX_DURABLE_RUNTIME_S + 1, True, "60", float("inf"), None]
)
def test_max_runtime_must_be_positive_seconds_within_the_cap(value: Any) -> None:
    if value is None:
        assert parse_request({"action": "submit", "max_runtime_s": None}) == SubmitRequest(
            kind=None
        )
        return
    refusal = _refusal({"action": "submit", "max_runtime_s": value})
    assert refusal.code == ErrorCode.INVALID_REQUEST
    assert "max_runtime_s" in refusal.message


def test_max_runtime_past_a_session_is_left_to_the_agent_to_judge() -> None:
    # Only the agent knows whether the kind is resumable, so the protocol takes up to the
    # durable cap and the agent refuses more than a session for any other kind.
    request = parse_request({"action": "submit", "max_runtime_s": MAX_RUNTIME_S + 1})
    assert isinstance(request, SubmitRequest)
    assert request.max_runtime_s == MAX_RUNTIME_S + 1


@pytest.mark.parametrize("value", [0, -1, MAX_ATTEMPTS + 1, True, "2", 2.0, None])
def test_max_attempts_must_be_a_whole_number_in_range(value: Any) -> None:
    refusal = _refusal({"action": "submit", "max_attempts": value})
    assert refusal.code == ErrorCode.INVALID_INPUT
    assert "'max_attempts' must be a whole number from 1 to" in refusal.message


def test_max_attempts_defaults_to_one_and_is_read() -> None:
    assert parse_request({"action": "submit"}) == SubmitRequest(kind=None, max_attempts=1)
    request = parse_request({"action": "submit", "max_attempts": MAX_ATTEMPTS})
    assert isinstance(request, SubmitRequest)
    assert request.max_attempts == MAX_ATTEMPTS


@pytest.mark.parametrize("action", ["resume", "suspend"])
def test_resume_and_suspend_name_their_job(action: str) -> None:
    refusal = _refusal({"action": action})
    assert refusal.code == ErrorCode.INVALID_REQUEST
    assert "job_id" in refusal.message
    query = parse_request({"action": action, "job_id": "a" * 32})
    assert query == JobQuery(action=Action(action), job_id="a" * 32)


def test_max_runtime_at_the_cap_is_accepted() -> None:
    request = parse_request({"action": "submit", "max_runtime_s": MAX_RUNTIME_S})
    assert isinstance(request, SubmitRequest)
    assert request.max_runtime_s == MAX_RUNTIME_S


def test_input_larger_than_the_limit_is_refused_as_too_large() -> None:
    big = {"text": "x" * MAX_INPUT_BYTES}
    refusal = _refusal({"action": "submit", "kind": "synthetic", "input": big})
    assert refusal.code == ErrorCode.INPUT_TOO_LARGE
    assert "s3://" in refusal.message


def test_input_just_under_the_limit_is_accepted() -> None:
    frame = len('{"text":""}')
    request = parse_request(
        {"action": "submit", "input": {"text": "x" * (MAX_INPUT_BYTES - frame)}}
    )
    assert isinstance(request, SubmitRequest)


def test_long_values_are_shortened_in_messages() -> None:
    refusal = _refusal({"action": "a" * 500})
    assert len(refusal.message) < 200


def test_times_have_milliseconds_and_z_and_round_trip() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
    text = format_time(moment)
    assert text == "2026-01-02T03:04:05.678Z"
    assert parse_time(text) == moment.replace(microsecond=678_000)
    assert utc_now().endswith("Z")


def test_terminal_statuses() -> None:
    assert not JobStatus.RUNNING.is_terminal
    assert not JobStatus.UNKNOWN.is_terminal
    assert all(
        s.is_terminal
        for s in (
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
            JobStatus.TIMED_OUT,
            JobStatus.LOST,
        )
    )


def test_error_answer_has_error_and_no_status() -> None:
    assert error_answer(ErrorCode.UNKNOWN_JOB, "no such job") == {
        "error": {"code": "UNKNOWN_JOB", "message": "no such job"}
    }
