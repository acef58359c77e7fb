"""The CLI reads jobs from the table, results from S3 and notifications from the inbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentjobs.protocol import JobStatus
from agentjobs.record import JobError, JobRecord, Progress, to_item
from emulator.resources import LocalResources
from testbed.aws import REGION, MotoEndpoint
from tests.support.cli import InProcessCli, assert_one_line_error, hermetic_env, list_every_page


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(monkeypatch, capsys)


@pytest.fixture
def env_file(tmp_path: Path, moto: MotoEndpoint, resources: LocalResources) -> Path:
    """A .local/env like the local stack writes, naming this test's resources."""
    path = tmp_path / "env"
    values = {**moto.env(), **resources.env()}
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def put_job(
    moto: MotoEndpoint,
    resources: LocalResources,
    job_id: str,
    *,
    minute: int,
    status: JobStatus = JobStatus.SUCCEEDED,
    kind: str = "synthetic",
    **fields: object,
) -> JobRecord:
    """Write a record in the shared item encoding, submitted at 10:<minute> on one day."""
    submitted = f"2026-11-20T10:{minute:02d}:00.000Z"
    record = JobRecord(
        job_id=job_id,
        session_id=f"session-{job_id}-{'x' * 30}",
        kind=kind,
        status=status,
        submitted_at=submitted,
        updated_at=submitted,
        max_runtime_s=3600,
        deadline_at="2026-11-20T12:00:00.000Z",
        finished_at=None if status == JobStatus.RUNNING else f"2026-11-20T10:{minute:02d}:30.000Z",
        **fields,  # type: ignore[arg-type]
    )
    moto.client("dynamodb").put_item(TableName=resources.table, Item=to_item(record))
    return record


def test_list_is_newest_first_across_statuses_and_pages_through_everything(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    statuses = [JobStatus.SUCCEEDED, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED]
    for minute in range(7):
        put_job(moto, resources, f"job-{minute}", minute=minute, status=statuses[minute % 4])
    seen = list_every_page(cli, env_file, limit=3)
    assert seen == [f"job-{m}" for m in range(6, -1, -1)]


def test_list_filters_by_status_kind_and_time(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    put_job(moto, resources, "old-report", minute=1, kind="data_report")
    put_job(moto, resources, "new-report", minute=5, kind="data_report")
    put_job(moto, resources, "new-synthetic", minute=6)
    put_job(moto, resources, "running-report", minute=7, status=JobStatus.RUNNING)
    run = cli(
        "list",
        "--status",
        "SUCCEEDED",
        "--kind",
        "data_report",
        "--since",
        "2026-11-20T10:03:00Z",
        "--json",
        "--local-env",
        str(env_file),
    )
    assert [job["job_id"] for job in run.json()["jobs"]] == ["new-report"]


def test_list_shows_a_table_for_people(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    put_job(moto, resources, "shown-job", minute=2)
    run = cli("list", "--local-env", str(env_file))
    assert "shown-job" in run.stdout
    assert "SUCCEEDED" in run.stdout


def test_status_shows_progress_and_error(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    put_job(
        moto,
        resources,
        "failed-job",
        minute=3,
        status=JobStatus.FAILED,
        progress=Progress(40.0, "profiling columns"),
        error=JobError("JOB_FAILED", "the CSV has no header row"),
    )
    run = cli("status", "failed-job", "--json", "--local-env", str(env_file))
    answer = run.json()
    assert answer["status"] == "FAILED"
    assert answer["progress"] == {"percent": 40.0, "message": "profiling columns"}
    assert answer["error"]["message"] == "the CSV has no header row"


def test_result_of_a_failed_job_exits_3_with_its_error(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    put_job(
        moto,
        resources,
        "broken",
        minute=3,
        status=JobStatus.FAILED,
        error=JobError("JOB_FAILED", "boom"),
    )
    run = cli("result", "broken", "--local-env", str(env_file))
    assert_one_line_error(run, "job broken ended FAILED", "JOB_FAILED: boom")
    assert run.code == 3


def test_result_of_a_running_job_says_to_wait(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    put_job(moto, resources, "busy", minute=3, status=JobStatus.RUNNING)
    run = cli("result", "busy", "--local-env", str(env_file))
    assert_one_line_error(run, "still RUNNING", "agentjobs wait busy")
    assert run.code == 7


def test_result_is_fetched_from_s3_and_its_report_saved_as_markdown(
    cli: InProcessCli,
    moto: MotoEndpoint,
    resources: LocalResources,
    env_file: Path,
    tmp_path: Path,
) -> None:
    report = {"title": "Orders", "markdown": "# Orders\n\n120 rows.", "rows": 120}
    key = "jobs/big-job/result.json"
    moto.client("s3").put_object(Bucket=resources.bucket, Key=key, Body=json.dumps(report))
    put_job(
        moto,
        resources,
        "big-job",
        minute=4,
        kind="data_report",
        result_uri=f"s3://{resources.bucket}/{key}",
    )
    run = cli("result", "big-job", "--json", "--local-env", str(env_file))
    assert run.json()["result"] == report
    saved = tmp_path / "report.md"
    run = cli("result", "big-job", "-o", str(saved), "--local-env", str(env_file))
    assert run.code == 0, str(run)
    assert saved.read_text().startswith("# Orders")
    run = cli("result", "big-job", "--local-env", str(env_file))
    assert "120 rows." in run.stdout


def test_stack_outputs_lead_to_the_stack_resources(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources
) -> None:
    outputs = {
        "AgentRuntimeArn": "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/a-AbCdE12345",
        "JobsTableName": resources.table,
        "ResultsBucketName": resources.bucket,
        "TopicArn": resources.topic_arn,
    }
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    moto.client("cloudformation").create_stack(
        StackName="agentjobs-test", TemplateBody=json.dumps(template)
    )
    put_job(moto, resources, "deployed-job", minute=1)
    env = hermetic_env(**moto.env())
    run = cli("status", "deployed-job", "--stack", "agentjobs-test", "--region", REGION, env=env)
    assert run.code == 0, str(run)
    assert "deployed-job" in run.stdout


def publish(moto: MotoEndpoint, resources: LocalResources, job_id: str) -> None:
    """A notification shaped as the poller publishes it: JSON for `default`, text for email."""
    message = {"job_id": job_id, "status": "SUCCEEDED", "kind": "synthetic"}
    moto.client("sns").publish(
        TopicArn=resources.topic_arn,
        MessageStructure="json",
        Message=json.dumps({"default": json.dumps(message), "email": f"Job {job_id} done"}),
        Subject=f"job {job_id} SUCCEEDED",
    )


def test_notifications_unwrap_the_sns_envelope_and_are_consumed_once(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    publish(moto, resources, "job-a")
    publish(moto, resources, "job-b")
    args = ("--json", "--wait", "5", "--local-env", str(env_file))
    kept = cli("notifications", "--job", "job-b", "--keep", *args).json()["notifications"]
    assert [n["message"]["job_id"] for n in kept] == ["job-b"]
    assert kept[0]["envelope"]["Type"] == "Notification"
    assert kept[0]["envelope"]["Subject"] == "job job-b SUCCEEDED"
    only_a = cli("notifications", "--job", "job-a", *args).json()["notifications"]
    assert [n["message"]["job_id"] for n in only_a] == ["job-a"]
    rest = cli("notifications", *args).json()["notifications"]
    assert [n["message"]["job_id"] for n in rest] == ["job-b"]
    assert cli("notifications", "--json", "--local-env", str(env_file)).json() == {
        "notifications": []
    }
