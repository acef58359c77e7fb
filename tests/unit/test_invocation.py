"""The agent's answer is decoded one way for every caller of InvokeAgentRuntime."""

from __future__ import annotations

import pytest

from agentjobs.invocation import AnswerError, decode_answer, refusal_of


def test_an_object_is_the_answer() -> None:
    assert decode_answer(b'{"status": "RUNNING", "job_id": "j"}') == {
        "status": "RUNNING",
        "job_id": "j",
    }


@pytest.mark.parametrize(
    ("body", "said"),
    [(b"not json", "not JSON"), (b"[1, 2]", "not a JSON object"), (b"\xff", "not JSON")],
)
def test_anything_else_says_what_it_was(body: bytes, said: str) -> None:
    with pytest.raises(AnswerError, match=said):
        decode_answer(body)


def test_a_refusal_is_an_error_without_a_status() -> None:
    error = {"code": "INVALID_INPUT", "message": "no"}
    assert refusal_of({"error": error}) == error
    assert refusal_of({"status": "FAILED", "error": error}) is None
    assert refusal_of({"error": "text"}) is None
