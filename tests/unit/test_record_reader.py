"""The tolerant record reader: a valid item is a JobRecord, any other a MalformedRecord."""

from __future__ import annotations

from typing import Any

import pytest

from agentjobs.notifier import Notification
from agentjobs.protocol import JobStatus
from agentjobs.record import JobError, JobRecord, MalformedRecord, read_item, to_item


def _record(**changes: Any) -> JobRecord:
    return JobRecord(
        job_id="j1",
        session_id="s" * 40,
        kind="synthetic",
        status=JobStatus.SUCCEEDED,
        submitted_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        max_runtime_s=3600.0,
        deadline_at="2026-01-01T01:00:00.000Z",
        result={"a": 1},
    ).evolve(**changes)


def test_a_valid_item_reads_as_its_record_notify_error_included() -> None:
    record = _record(notify_error=JobError("NOTIFY_REFUSED", "refused"))
    assert read_item(to_item(record)) == record
    assert record.is_terminal and record.is_final and not record.needs_notification


@pytest.mark.parametrize(
    ("damage", "readable"),
    [
        ({"kind": None}, {"status": "SUCCEEDED", "kind": None}),
        ({"status": {"S": "DANCING"}}, {"status": "DANCING", "kind": "synthetic"}),
        ({"result": {"S": "{not json"}}, {"status": "SUCCEEDED", "has_result": False}),
        ({"max_runtime_s": {"N": "soon"}}, {"max_runtime_s": None}),
    ],
)
def test_a_malformed_item_keeps_what_can_be_read_and_says_why(
    damage: dict[str, Any], readable: dict[str, Any]
) -> None:
    item = {**to_item(_record()), **damage}
    item = {k: v for k, v in item.items() if v is not None}

    job = read_item(item)

    assert isinstance(job, MalformedRecord)
    assert job.job_id == "j1" and job.session_id == "s" * 40
    assert job.problem.startswith("not a job record")
    for name, value in readable.items():
        assert getattr(job, name) == value


def test_a_malformed_item_is_notified_with_what_could_be_read() -> None:
    item = to_item(_record())
    del item["kind"]

    document = Notification.from_record(read_item(item)).document()

    assert document["job_id"] == "j1" and document["status"] == "SUCCEEDED"
    assert document["kind"] is None and document["result_preview"] == '{"a":1}'


def test_an_item_without_a_status_is_notified_as_unknown() -> None:
    item = to_item(_record())
    del item["status"]

    job = read_item(item)

    assert not job.is_terminal
    assert Notification.from_record(job).status == "UNKNOWN"
