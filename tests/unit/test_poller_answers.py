"""How the poller reads an agent's answer, including the bad ones."""

from __future__ import annotations

import json

import pytest

from agentjobs.protocol import JobStatus
from jobpoller.answers import Finished, NotKnown, StillRunning, Unusable, read_answer


def _read(value: object) -> object:
    return read_answer(json.dumps(value).encode(), "job-1")


def test_running_answer_carries_progress() -> None:
    answer = _read({"job_id": "job-1", "status": "RUNNING", "progress": {"percent": 40}})
    assert isinstance(answer, StillRunning)
    assert answer.progress.percent == 40


def test_succeeded_inline_result() -> None:
    at = "2026-01-01T00:00:00+00:00"
    answer = _read({"job_id": "job-1", "status": "SUCCEEDED", "result": None, "finished_at": at})
    assert isinstance(answer, Finished)
    assert answer.has_result and answer.result is None and answer.finished_at == at


@pytest.mark.parametrize("finished_at", ["t", "\ud800", "2026-01-01T00:00:00", "9" * 40, 7])
def test_a_finished_at_that_is_not_a_protocol_time_is_not_kept(finished_at: object) -> None:
    answer = _read({"status": "FAILED", "finished_at": finished_at})
    assert isinstance(answer, Finished) and answer.finished_at is None


def test_succeeded_result_uri() -> None:
    answer = _read({"status": "SUCCEEDED", "result_uri": "s3://b/k"})
    assert isinstance(answer, Finished) and answer.result_uri == "s3://b/k"


def test_failed_without_error_gets_a_reason() -> None:
    answer = _read({"status": "FAILED"})
    assert isinstance(answer, Finished) and answer.status == JobStatus.FAILED
    assert answer.error is not None


@pytest.mark.parametrize(
    "value",
    [{"status": "UNKNOWN"}, {"error": {"code": "UNKNOWN_JOB", "message": "recycled"}}],
)
def test_unknown_job_means_recycled_session(value: object) -> None:
    assert isinstance(_read(value), NotKnown)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>oops</html>",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"status": "DONE"}',
        b'{"status": 3}',
        b'{"error": {"code": "INTERNAL_ERROR", "message": "x"}}',
        b"{}",
        b'{"status": "SUCCEEDED"}',
        b'{"status": "SUCCEEDED", "result_uri": "http://x"}',
        b'{"job_id": "other", "status": "RUNNING"}',
    ],
)
def test_bad_answers_are_unusable_with_a_reason(body: bytes) -> None:
    answer = read_answer(body, "job-1")
    assert isinstance(answer, Unusable) and answer.reason


def test_running_answer_from_the_agents_stores_means_a_lost_session() -> None:
    answer = _read({"job_id": "job-1", "status": "RUNNING", "progress": {}, "live": False})
    assert isinstance(answer, NotKnown)


@pytest.mark.parametrize("live", [True, None, "false", 0])
def test_running_answer_not_marked_live_false_is_progress(live: object) -> None:
    answer = _read({"job_id": "job-1", "status": "RUNNING", "live": live})
    assert isinstance(answer, StillRunning)


def test_finished_answer_from_the_stores_is_finished() -> None:
    answer = _read({"job_id": "job-1", "status": "CANCELLED", "live": False})
    assert isinstance(answer, Finished) and answer.status == JobStatus.CANCELLED
