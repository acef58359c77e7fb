"""`agentjobs events`: a job's history from the history table, oldest first, for people and
scripts; `status` shows the attempt and the last checkpoint; `submit --max-attempts`."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from agentjobs.history import Event, EventLog, EventType
from agentjobs.limits import MAX_ATTEMPTS
from agentjobs.protocol import JobStatus
from agentjobs.record import JobRecord, to_item
from emulator.resources import LocalResources
from testbed.aws import REGION, MotoEndpoint
from testbed.local_runtime import local_runtime
from tests.support.cli import InProcessCli, assert_one_line_error, hermetic_env, run_cli

RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/cli_events-AbCdE12345"
FIRST_SESSION = "agentjobs-cli-" + "a" * 32
RESUMED_SESSION = "b" * 32 + "-r2"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(monkeypatch, capsys)


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


@pytest.fixture
def env_file(tmp_path: Path, moto: MotoEndpoint, resources: LocalResources) -> Path:
    """A .local/env like the local stack writes, naming this test's tables."""
    return write_env_file(tmp_path / "env", {**moto.env(), **resources.env()})


def new_job_id() -> str:
    return uuid.uuid4().hex


def put_record(
    moto: MotoEndpoint, resources: LocalResources, job_id: str, **fields: object
) -> JobRecord:
    record = JobRecord(
        job_id=job_id,
        session_id=FIRST_SESSION,
        kind="synthetic",
        status=JobStatus.RUNNING,
        submitted_at="2026-11-20T10:00:00.000Z",
        updated_at="2026-11-20T10:05:00.000Z",
        max_runtime_s=3600,
        deadline_at="2026-11-20T11:00:00.000Z",
        **fields,  # type: ignore[arg-type]
    )
    moto.client("dynamodb").put_item(TableName=resources.table, Item=to_item(record))
    return record


def history_of(job_id: str) -> list[Event]:
    """A resumed job's life, as agent and poller write it."""
    return [
        Event(
            EventType.SUBMITTED,
            at="2026-11-20T10:00:00.100Z",
            session_id=FIRST_SESSION,
            detail={"kind": "synthetic", "max_attempts": 3},
        ),
        Event(
            EventType.PROGRESS,
            at="2026-11-20T10:00:00.900Z",
            session_id=FIRST_SESSION,
            detail={"percent": 10, "message": "step 1"},
        ),
        Event(
            EventType.SESSION_LOST,
            at="2026-11-20T10:03:00.000Z",
            session_id=FIRST_SESSION,
            detail={"reason": "not known"},
        ),
        Event(
            EventType.RESUMED,
            at="2026-11-20T10:03:00.001Z",
            attempt=2,
            session_id=RESUMED_SESSION,
            detail={"checkpoint_at": "2026-11-20T10:02:30.000Z"},
        ),
        Event(
            EventType.ENDED,
            at="2026-11-20T10:09:00.000Z",
            attempt=2,
            detail={"status": "SUCCEEDED", "error": None},
        ),
    ]


def append_shuffled(moto: MotoEndpoint, resources: LocalResources, job_id: str) -> list[Event]:
    events = history_of(job_id)
    log = EventLog(moto.client("dynamodb"), resources.events_table)
    # Written out of order: the table's sort key, not the writers' order, makes it oldest first.
    for event in (events[3], events[0], events[4], events[1], events[2]):
        log.append(job_id, event, expires_at=None)
    return events


def test_events_json_lists_the_history_oldest_first(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    job_id = new_job_id()
    put_record(moto, resources, job_id)
    events = append_shuffled(moto, resources, job_id)
    run = cli("events", job_id, "--json", "--local-env", str(env_file))
    assert run.code == 0, str(run)
    shown = run.json()
    assert [e["type"] for e in shown] == [
        "submitted",
        "progress",
        "session_lost",
        "resumed",
        "ended",
    ]
    assert [e["at"] for e in shown] == [e.at for e in events]
    assert shown[0] == {
        "type": "submitted",
        "at": "2026-11-20T10:00:00.100Z",
        "attempt": 1,
        "session_id": FIRST_SESSION,
        "detail": {"kind": "synthetic", "max_attempts": 3},
    }
    assert shown[3]["attempt"] == 2
    assert shown[3]["session_id"] == RESUMED_SESSION
    assert "session_id" not in shown[4]
    assert shown[4]["detail"] == {"status": "SUCCEEDED", "error": None}


def test_events_table_shows_time_type_attempt_short_session_and_detail(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    job_id = new_job_id()
    put_record(moto, resources, job_id)
    append_shuffled(moto, resources, job_id)
    run = cli("events", job_id, "--local-env", str(env_file))
    assert run.code == 0, str(run)
    header, _, *rows = [cells(line) for line in run.stdout.splitlines() if line.strip()]
    assert header == ["TIME (UTC)", "EVENT", "ATTEMPT", "SESSION", "DETAIL"]
    assert [row[1] for row in rows] == ["submitted", "progress", "session_lost", "resumed", "ended"]
    # Milliseconds: the first events of a job come within one second.
    assert [row[0] for row in rows[:2]] == ["2026-11-20 10:00:00.100", "2026-11-20 10:00:00.900"]
    assert [row[2] for row in rows] == ["1", "1", "1", "2", "2"]
    # The session's tail tells the sessions apart (the CLI's ids share their head).
    assert [row[3] for row in rows] == [
        "..." + FIRST_SESSION[-12:],
        "..." + FIRST_SESSION[-12:],
        "..." + FIRST_SESSION[-12:],
        "..." + RESUMED_SESSION[-12:],
        "-",
    ]
    assert rows[0][4] == "kind=synthetic  max_attempts=3"
    assert rows[4][4] == "status=SUCCEEDED  error=null"


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split("[│┃]", line)]


def test_a_job_without_events_has_an_empty_history(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    # A job submitted before the stack kept histories: known to the job table, no events.
    job_id = new_job_id()
    put_record(moto, resources, job_id)
    run = cli("events", job_id, "--json", "--local-env", str(env_file))
    assert run.code == 0, str(run)
    assert run.json() == []
    run = cli("events", job_id, "--local-env", str(env_file))
    assert run.code == 0, str(run)
    assert f"No events recorded for job {job_id}." in run.stdout


def test_an_unknown_job_is_refused_as_status_refuses_it(
    cli: InProcessCli, resources: LocalResources, env_file: Path
) -> None:
    job_id = new_job_id()
    run = cli("events", job_id, "--local-env", str(env_file))
    assert_one_line_error(run, f"no job {job_id}", resources.table, "agentjobs list")
    assert run.code == cli("status", job_id, "--local-env", str(env_file)).code == 1


@pytest.mark.parametrize(
    "job_id",
    [
        "not-a-job",
        "A" * 32,  # upper case
        "a" * 31,
        "a" * 33,
        "a" * 200,
        "0123456789abcdef0123456789abcdeg",
    ],
)
def test_a_malformed_job_id_is_a_usage_error_naming_the_expected_form(
    job_id: str, cli: InProcessCli, env_file: Path
) -> None:
    run = cli("events", job_id, "--local-env", str(env_file))
    assert_one_line_error(run, "is not a job id", "32 lowercase hexadecimal characters")
    assert run.code == 2
    # A long id is quoted in part, never a page of it.
    assert len(run.stderr) < 300


def test_a_malformed_job_id_through_the_console_script(env_file: Path) -> None:
    run = run_cli("events", "../../etc/passwd", "--local-env", str(env_file))
    assert_one_line_error(run, "'../../etc/passwd' is not a job id")
    assert run.code == 2


def test_no_history_table_named_says_what_to_redeploy(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, tmp_path: Path
) -> None:
    # An env file written before the local stack had a history table.
    values = {**moto.env(), **resources.env()}
    del values["EVENTS_TABLE"]
    old = write_env_file(tmp_path / "old-env", values)
    run = cli("events", new_job_id(), "--local-env", str(old))
    assert_one_line_error(run, "names no history table", "EVENTS_TABLE", "make local-up")
    assert run.code == 1


def test_a_history_table_that_does_not_exist_is_named(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, tmp_path: Path
) -> None:
    values = {**moto.env(), **resources.env(), "EVENTS_TABLE": "no-such-history"}
    missing = write_env_file(tmp_path / "env", values)
    run = cli("events", new_job_id(), "--local-env", str(missing))
    assert_one_line_error(run, "the history table no-such-history", "does not exist", "deploy")
    assert run.code == 1


def test_events_found_from_the_environment(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources
) -> None:
    job_id = new_job_id()
    put_record(moto, resources, job_id)
    append_shuffled(moto, resources, job_id)
    env = hermetic_env(**moto.env(), **resources.env())
    run = cli("events", job_id, "--json", env=env)
    assert run.code == 0, str(run)
    assert len(run.json()) == 5
    env.pop("EVENTS_TABLE")
    run = cli("events", job_id, env=env)
    assert_one_line_error(run, "the environment names no history table", "EVENTS_TABLE")


def deploy_stand_in(moto: MotoEndpoint, resources: LocalResources, name: str, **extra: str) -> None:
    outputs = {
        "AgentRuntimeArn": RUNTIME_ARN,
        "JobsTableName": resources.table,
        "ResultsBucketName": resources.bucket,
        "TopicArn": resources.topic_arn,
        **extra,
    }
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    moto.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_a_stacks_events_table_output_leads_to_its_history(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources
) -> None:
    job_id = new_job_id()
    put_record(moto, resources, job_id)
    append_shuffled(moto, resources, job_id)
    name = f"agentjobs-events-{uuid.uuid4().hex[:8]}"
    deploy_stand_in(moto, resources, name, EventsTableName=resources.events_table)
    env = hermetic_env(**moto.env())
    run = cli("events", job_id, "--json", "--stack", name, "--region", REGION, env=env)
    assert run.code == 0, str(run)
    assert [e["type"] for e in run.json()][-1] == "ended"


def test_a_stack_from_before_histories_still_serves_status_and_says_so_for_events(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources
) -> None:
    job_id = new_job_id()
    put_record(moto, resources, job_id)
    name = f"agentjobs-old-{uuid.uuid4().hex[:8]}"
    deploy_stand_in(moto, resources, name)
    env = hermetic_env(**moto.env())
    status = cli("status", job_id, "--stack", name, "--region", REGION, env=env)
    assert status.code == 0, str(status)
    run = cli("events", job_id, "--stack", name, "--region", REGION, env=env)
    assert_one_line_error(run, f"stack {name} names no history table", "EventsTableName")
    assert "make deploy" in run.stderr


# --- status: the attempt and the last checkpoint -------------------------------------------


def test_status_shows_the_attempt_and_the_last_checkpoint(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    job_id = new_job_id()
    put_record(
        moto,
        resources,
        job_id,
        resumable=True,
        attempt=2,
        max_attempts=3,
        run_session_id=RESUMED_SESSION,
        run_started_at="2026-11-20T10:03:00.000Z",
        checkpoint_at="2026-11-20T10:04:30.000Z",
    )
    run = cli("status", job_id, "--local-env", str(env_file))
    assert run.code == 0, str(run)
    rows = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in run.stdout.splitlines()}
    assert rows["attempt"].strip() == "2 of 3"
    assert rows["checkpoint"].strip() == "2026-11-20 10:04:30"
    assert rows["running"].strip() == f"in  {RESUMED_SESSION}"
    assert rows["session"].strip() == FIRST_SESSION
    shown = cli("status", job_id, "--json", "--local-env", str(env_file)).json()
    assert (shown["attempt"], shown["max_attempts"]) == (2, 3)
    assert shown["checkpoint_at"] == "2026-11-20T10:04:30.000Z"
    assert shown["run_session_id"] == RESUMED_SESSION


def test_status_of_a_single_attempt_job_shows_no_attempt(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    job_id = new_job_id()
    put_record(moto, resources, job_id)
    run = cli("status", job_id, "--local-env", str(env_file))
    assert run.code == 0, str(run)
    assert "attempt" not in run.stdout
    assert "checkpoint" not in run.stdout
    assert "running in" not in run.stdout


# --- submit --max-attempts -------------------------------------------------------------------


def test_submit_sends_max_attempts_to_the_agent(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, tmp_path: Path
) -> None:
    # The echo agent answers with the payload it received: what the CLI really sent.
    with local_runtime("echo_agent") as runtime:
        values = {
            **moto.env(),
            **resources.env(),
            "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": runtime.url,
            "AGENT_RUNTIME_ARN": RUNTIME_ARN,
        }
        env = write_env_file(tmp_path / "env", values)
        run = cli("submit", "synthetic", "--max-attempts", "3", "--json", "--local-env", str(env))
        assert run.code == 0, str(run)
        assert run.json()["echo"]["max_attempts"] == 3
        run = cli("submit", "synthetic", "--json", "--local-env", str(env))
        assert run.code == 0, str(run)
        assert "max_attempts" not in run.json()["echo"]


@pytest.mark.parametrize("value", ["0", str(MAX_ATTEMPTS + 1), "two", "1.5", "-1"])
def test_submit_refuses_max_attempts_out_of_range_before_calling_anyone(
    value: str, cli: InProcessCli, env_file: Path
) -> None:
    # No runtime runs here: a refusal must come before any call.
    run = cli("submit", "synthetic", "--max-attempts", value, "--local-env", str(env_file))
    assert run.code == 2, str(run)
    assert "--max-attempts" in run.stderr
    assert "Traceback" not in run.stderr
