"""Hypothesis over arbitrary agent answers: the poller's reading of them never raises, and
every reading is one it can act on (still running, finished, not known, or unusable), holding
only text that encodes as UTF-8, whatever Unicode (lone surrogates included) or length came in."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from agentjobs.protocol import TERMINAL_STATUSES
from jobpoller.answers import Finished, NotKnown, StillRunning, Unusable, read_answer
from tests.support.hostile_text import encodes, hostile_text, raw_json

JOB_ID = "job-1"
STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "LOST", "UNKNOWN", ""]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | hostile_text
    | st.sampled_from([*STATUSES, JOB_ID, "s3://b/k", "UNKNOWN_JOB", "TIMED_OUT"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=10,
)
answers = st.fixed_dictionaries(
    {},
    optional={
        "job_id": st.sampled_from([JOB_ID, "other"]) | values,
        "status": st.sampled_from(STATUSES) | values,
        "progress": values | st.fixed_dictionaries({"percent": values, "message": values}),
        "result": values,
        "result_uri": st.sampled_from(["s3://bucket/key", "http://x"]) | values,
        "error": values | st.fixed_dictionaries({"code": values, "message": values}),
        "finished_at": values,
    },
)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _acts_on(answer: object) -> None:
    assert isinstance(answer, StillRunning | Finished | NotKnown | Unusable), answer
    held: list[str] = []
    if isinstance(answer, Unusable):
        held.append(answer.reason)
    if isinstance(answer, StillRunning | Finished):
        held.append(answer.progress.message)
    if isinstance(answer, Finished):
        held += [*_strings(answer.result), answer.result_uri or "", answer.finished_at or ""]
        if answer.error is not None:
            held += [answer.error.code, answer.error.message]
    # What the poller goes on to store and publish must be valid Unicode: DynamoDB and SNS
    # take UTF-8, and a lone surrogate has no UTF-8 form.
    bad = [text[:80] for text in held if not encodes(text)]
    assert not bad, (type(answer).__name__, bad)
    if isinstance(answer, Unusable):
        assert answer.reason and len(answer.reason) < 500
    if isinstance(answer, Finished):
        assert answer.status in TERMINAL_STATUSES
        assert answer.result_uri is None or answer.result_uri.startswith("s3://")
    if isinstance(answer, StillRunning | Finished):
        assert 0 <= answer.progress.percent <= 100


@settings(max_examples=400, deadline=None)
@given(value=answers | values)
@example(value={"status": "SUCCEEDED", "result": float("inf")})
@example(value={"status": "RUNNING", "progress": {"percent": float("nan")}})
@example(value={"status": "FAILED", "error": {"code": None, "message": ["x"]}})
@example(value={"job_id": JOB_ID, "status": "FAILED", "error": {"code": "X", "message": "\ud800"}})
@example(
    value={"job_id": JOB_ID, "status": "RUNNING", "progress": {"percent": 1, "message": "\udfff"}}
)
@example(value={"job_id": JOB_ID, "status": "SUCCEEDED", "result": {"\ud800": "x"}})
@example(
    value={"job_id": JOB_ID, "status": "FAILED", "error": {"code": "X", "message": "e" * 300_000}}
)
def test_any_decoded_answer_is_read_without_raising(value: Any) -> None:
    try:
        body = raw_json(value)
    except (ValueError, RecursionError):
        return
    _acts_on(read_answer(body, JOB_ID))


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300))
@example(body=b"[" * 50_000)
@example(body=b'{"status": "SUCCEEDED", "result": 1e999}')
@example(body=b'{"status": "RUNNING", "progress": {"percent": 1e999}}')
@example(body=b"9" * 5_000)
@example(
    body=b'{"job_id": "job-1", "status": "FAILED", "error": {"code": "X", "message": "\\ud800"}}'
)
@example(body=b'{"job_id": "job-1", "status": "RUNNING", "progress": {"message": "\xff\xfe"}}')
def test_any_bytes_are_read_without_raising(body: bytes) -> None:
    _acts_on(read_answer(body, JOB_ID))
