"""Every field bounded where it enters: limits, text that is not UTF-8, caller headers, S3 URIs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentjobs.limits import (
    MAX_JOB_ID_CHARS,
    MAX_KIND_CHARS,
    MAX_OWNER_CHARS,
    MAX_S3_KEY_BYTES,
    MAX_SESSION_ID_CHARS,
    MIN_SESSION_ID_CHARS,
    cap_job_text,
)
from agentjobs.protocol import (
    Action,
    Caller,
    ErrorCode,
    JobQuery,
    ProtocolError,
    S3Location,
    SubmitRequest,
    parse_caller,
    parse_request,
    parse_s3_uri,
)

SURROGATE = "\ud800"


def _refusal(payload: object) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_request(payload)
    return caught.value


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize(
    ("payload", "code", "where"),
    [
        ({"action": "status", "job_id": SURROGATE}, ErrorCode.INVALID_REQUEST, "'job_id'"),
        ({"action": "cancel", "job_id": "a" + SURROGATE}, ErrorCode.INVALID_REQUEST, "'job_id'"),
        ({"prompt": "hi " + SURROGATE}, ErrorCode.INVALID_REQUEST, "'prompt'"),
        ({"action": SURROGATE}, ErrorCode.INVALID_REQUEST, "'action'"),
        ({"action": "submit", "kind": SURROGATE}, ErrorCode.INVALID_REQUEST, "'kind'"),
        (
            {"action": "submit", "client_token": SURROGATE},
            ErrorCode.INVALID_REQUEST,
            "'client_token'",
        ),
        (
            {"action": "submit", "kind": "agent", "input": {"prompt": SURROGATE}},
            ErrorCode.INVALID_INPUT,
            "'input.prompt'",
        ),
        (
            {"action": "submit", "input": {"a": [1, {"b": ["x", SURROGATE]}]}},
            ErrorCode.INVALID_INPUT,
            "'input.a[1].b[1]'",
        ),
        ({"action": "submit", "input": {SURROGATE: 1}}, ErrorCode.INVALID_INPUT, "input"),
        ({SURROGATE: "x", "action": "status"}, ErrorCode.INVALID_REQUEST, "field name"),
    ],
)
def test_text_that_is_not_utf8_is_refused_naming_where_it_is(
    payload: dict[str, Any], code: ErrorCode, where: str
) -> None:
    refusal = _refusal(payload)
    assert refusal.code == code
    assert where in refusal.message
    assert "UTF-8" in refusal.message
    # The refusal itself must travel: it never carries the unencodable text.
    assert _encodes(refusal.message)


def test_deeply_nested_input_is_refused_not_crashed() -> None:
    deep: Any = "x"
    for _ in range(5_000):
        deep = [deep]
    refusal = _refusal({"action": "submit", "input": {"d": deep}})
    assert refusal.code == ErrorCode.INVALID_INPUT
    assert "nested" in refusal.message


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"action": "submit", "kind": "k" * (MAX_KIND_CHARS + 1)}, f"at most {MAX_KIND_CHARS}"),
        ({"action": "status", "job_id": "j" * (MAX_JOB_ID_CHARS + 1)}, f"{MAX_JOB_ID_CHARS}"),
        ({"action": "status", "job_id": "../jobs/x"}, "32 lowercase hexadecimal"),
        ({"action": "result", "job_id": "a b"}, "32 lowercase hexadecimal"),
        ({"action": "result", "job_id": "J1"}, "32 lowercase hexadecimal"),
    ],
)
def test_fields_past_their_limit_are_refused_naming_it(payload: dict[str, Any], says: str) -> None:
    refusal = _refusal(payload)
    assert refusal.code == ErrorCode.INVALID_REQUEST
    assert says in refusal.message
    assert len(refusal.message) < 300


def test_job_ids_we_mint_pass() -> None:
    for job_id in ("0" * 32, "8c5ecfc4a0c14b4491e4c30446acf9e8"):
        assert parse_request({"action": "status", "job_id": job_id}) == JobQuery(
            Action.STATUS, job_id
        )


def test_unicode_that_encodes_is_accepted_everywhere() -> None:
    request = parse_request(
        {
            "action": "submit",
            "kind": "agent",
            "input": {"prompt": "Zusammenfassung \u00fcber \U0001f680 und \u4e2d\u6587"},
            "client_token": "t\u00f6ken-\U0001f600",
        }
    )
    assert isinstance(request, SubmitRequest)
    assert request.client_token == "t\u00f6ken-\U0001f600"


# -- the caller's headers ---------------------------------------------------------------


def test_no_headers_is_a_direct_call() -> None:
    assert parse_caller(None, None) == Caller(session_id=None, owner=None)
    assert parse_caller("", "") == Caller(session_id=None, owner=None)


def test_session_ids_as_agentcore_allows_them_pass() -> None:
    for length in (MIN_SESSION_ID_CHARS, MAX_SESSION_ID_CHARS):
        assert parse_caller("s" * length, "alice") == Caller("s" * length, "alice")


@pytest.mark.parametrize(
    ("session_id", "owner", "says"),
    [
        (
            "s" * (MIN_SESSION_ID_CHARS - 1),
            None,
            f"{MIN_SESSION_ID_CHARS} to {MAX_SESSION_ID_CHARS}",
        ),
        (
            "s" * (MAX_SESSION_ID_CHARS + 1),
            None,
            f"{MIN_SESSION_ID_CHARS} to {MAX_SESSION_ID_CHARS}",
        ),
        ("s" * 40 + "\x07", None, "control"),
        (None, "o" * (MAX_OWNER_CHARS + 1), f"at most {MAX_OWNER_CHARS}"),
        (None, "alice\x00", "control"),
    ],
)
def test_caller_headers_past_their_limits_are_refused(
    session_id: str | None, owner: str | None, says: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_caller(session_id, owner)
    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert says in caught.value.message
    assert "header" in caught.value.message


# -- S3 URIs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "location"),
    [
        ("s3://my-results/inputs/a.csv", S3Location("my-results", "inputs/a.csv")),
        ("s3://a.b-c/k", S3Location("a.b-c", "k")),
        ("s3://abc/" + "k" * MAX_S3_KEY_BYTES, S3Location("abc", "k" * MAX_S3_KEY_BYTES)),
        ("s3://abc/caf\u00e9 report.csv", S3Location("abc", "caf\u00e9 report.csv")),
    ],
)
def test_s3_uris_as_s3_allows_them_parse(uri: str, location: S3Location) -> None:
    assert parse_s3_uri(uri) == location


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("https://example.com/a.csv", "s3://"),
        ("s3://bucket-only", "key"),
        ("s3:///key", "bucket"),
        ("s3://ab/key", "3 to 63"),
        ("s3://" + "b" * 64 + "/key", "3 to 63"),
        ("s3://My-Bucket/key", "lowercase"),
        ("s3://bucket_x/key", "lowercase"),
        ("s3://-bucket/key", "begin and end"),
        ("s3://bucket-/key", "begin and end"),
        ("s3://a..b/key", "adjacent"),
        ("s3://192.168.5.4/key", "IP address"),
        ("s3://xn--bucket/key", "reserved"),
        ("s3://bucket-s3alias/key", "reserved"),
        ("s3://abc/" + "k" * (MAX_S3_KEY_BYTES + 1), f"{MAX_S3_KEY_BYTES} bytes"),
        ("s3://abc/" + "\u00e9" * (MAX_S3_KEY_BYTES // 2 + 1), f"{MAX_S3_KEY_BYTES} bytes"),
        ("s3://abc/inputs/../jobs/x/outcome.json", "'..'"),
        ("s3://abc/inputs/./a.csv", "'.'"),
        ("s3://abc/inputs/a\x00.csv", "control"),
    ],
)
def test_s3_uris_s3_would_refuse_are_refused_saying_why(uri: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_s3_uri(uri)
    message = str(caught.value)
    assert says in message
    # Never the URI whole: it may be a megabyte long.
    assert len(message) < 300


# -- text a job produces ----------------------------------------------------------------


def test_job_text_is_capped_and_made_encodable() -> None:
    assert cap_job_text("short", 10) == "short"
    capped = cap_job_text("x" * 5000, 200)
    assert len(capped) == 200
    assert capped.endswith("\u2026")
    cleaned = cap_job_text("bad " + SURROGATE + " text", 200)
    assert _encodes(cleaned)
    assert cleaned.startswith("bad ")
    assert cleaned.endswith(" text")


# -- any text at all --------------------------------------------------------------------

# Any code point, lone surrogates included (st.characters() alone leaves them out).
any_text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=300)
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=15,
)
requestish = st.fixed_dictionaries(
    {"action": st.sampled_from(["submit", "status", "result", "cancel"]) | any_text},
    optional={
        "kind": st.sampled_from(["synthetic", "data_report", "agent"]) | any_text,
        "input": st.dictionaries(any_text, any_json, max_size=4),
        "job_id": any_text,
        "client_token": any_text,
        "prompt": any_text,
    },
)


@settings(max_examples=500, deadline=None)
@given(payload=requestish | any_json)
def test_any_payload_parses_to_encodable_text_or_an_encodable_refusal(payload: Any) -> None:
    try:
        request = parse_request(payload)
    except ProtocolError as refusal:
        assert _encodes(refusal.message)
        assert len(refusal.message) < 1000
        return
    fields = (
        [request.client_token, json.dumps(request.input, ensure_ascii=False)]
        if isinstance(request, SubmitRequest)
        else [request.job_id]
    )
    assert all(_encodes(text) for text in fields if text is not None)


@settings(max_examples=300, deadline=None)
@given(session_id=any_text, owner=any_text)
def test_any_caller_headers_parse_or_are_refused_encodably(session_id: str, owner: str) -> None:
    try:
        caller = parse_caller(session_id, owner)
    except ProtocolError as refusal:
        assert _encodes(refusal.message)
        return
    for text in (caller.session_id, caller.owner):
        assert text is None or _encodes(text)


@settings(max_examples=300, deadline=None)
@given(uri=any_text.map(lambda t: "s3://" + t))
def test_any_s3_uri_parses_or_is_refused_encodably(uri: str) -> None:
    try:
        location = parse_s3_uri(uri)
    except ValueError as refusal:
        assert _encodes(str(refusal))
        return
    assert len(location.key.encode()) <= MAX_S3_KEY_BYTES
