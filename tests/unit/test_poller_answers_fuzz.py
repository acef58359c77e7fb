"""Hypothesis over arbitrary agent answers: the poller's reading of them never raises, and
every reading is one it can act on (still running, finished, not known, or unusable)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from jobpoller.answers import Finished, NotKnown, StillRunning, Unusable, read_answer

from agentjobs.protocol import TERMINAL_STATUSES

JOB_ID = "job-1"
STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "LOST", "UNKNOWN", ""]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([*STATUSES, JOB_ID, "s3://b/k", "UNKNOWN_JOB", "TIMED_OUT"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
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


def _acts_on(answer: object) -> None:
    assert isinstance(answer, StillRunning | Finished | NotKnown | Unusable), answer
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
def test_any_decoded_answer_is_read_without_raising(value: Any) -> None:
    try:
        body = json.dumps(value).encode()
    except (ValueError, RecursionError):
        return
    _acts_on(read_answer(body, JOB_ID))


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300))
@example(body=b"[" * 50_000)
@example(body=b'{"status": "SUCCEEDED", "result": 1e999}')
@example(body=b'{"status": "RUNNING", "progress": {"percent": 1e999}}')
@example(body=b"9" * 5_000)
def test_any_bytes_are_read_without_raising(body: bytes) -> None:
    _acts_on(read_answer(body, JOB_ID))
