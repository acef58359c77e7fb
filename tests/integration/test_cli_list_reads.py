"""`agentjobs list` over a moto server: malformed records are skipped, failures are one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentjobs.protocol import JobStatus
from agentjobs.record import JobRecord, to_item
from emulator.ports import free_port
from emulator.resources import LocalResources
from testbed.aws import REGION, MotoEndpoint
from tests.support.cli import InProcessCli, assert_one_line_error, list_every_page


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(monkeypatch, capsys)


def _env_file(tmp_path: Path, values: dict[str, str]) -> Path:
    path = tmp_path / "env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def _put(moto: MotoEndpoint, resources: LocalResources, job_id: str, minute: int) -> None:
    submitted = f"2026-11-20T10:{minute:02d}:00.000Z"
    record = JobRecord(
        job_id=job_id,
        session_id=f"session-{job_id}-{'x' * 30}",
        kind="synthetic",
        status=JobStatus.SUCCEEDED,
        submitted_at=submitted,
        updated_at=submitted,
        max_runtime_s=3600,
        deadline_at="2026-11-20T12:00:00.000Z",
        finished_at=f"2026-11-20T10:{minute:02d}:30.000Z",
    )
    moto.client("dynamodb").put_item(TableName=resources.table, Item=to_item(record))


def test_a_malformed_record_is_skipped_and_the_others_listed_across_pages(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, tmp_path: Path
) -> None:
    for minute in range(4):
        _put(moto, resources, f"job-{minute}", minute)
    # On the status index, but its progress is not an object: not a readable record.
    moto.client("dynamodb").put_item(
        TableName=resources.table,
        Item={
            "job_id": {"S": "job-bad"},
            "status": {"S": "SUCCEEDED"},
            "submitted_at": {"S": "2026-11-20T10:02:30.000Z"},
            "progress": {"S": "not an object"},
        },
    )
    env = _env_file(tmp_path, {**moto.env(), **resources.env()})
    assert list_every_page(cli, env, limit=2) == ["job-3", "job-2", "job-1", "job-0"]


def test_listing_a_missing_table_names_the_table_and_the_refusal(
    cli: InProcessCli, moto: MotoEndpoint, tmp_path: Path
) -> None:
    env = _env_file(tmp_path, {**moto.env(), "JOBS_TABLE": "no-such-table"})

    run = cli("list", "--local-env", str(env))

    assert_one_line_error(
        run, "AWS answered ResourceNotFoundException", "listing jobs in table no-such-table"
    )
    assert run.code == 1


def test_listing_an_unreachable_stack_points_to_local_up(cli: InProcessCli, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = _env_file(
        tmp_path,
        {
            "AWS_ENDPOINT_URL": dead,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "JOBS_TABLE": "jobs",
        },
    )

    run = cli("list", "--local-env", str(env))

    assert_one_line_error(run, "cannot reach", dead, "while listing jobs in table jobs")
