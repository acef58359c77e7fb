"""Every bad input gets one clear line on stderr, a non-zero exit code and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.ports import free_port
from emulator.resources import LocalResources
from testbed.aws import REGION, MotoEndpoint
from tests.support.cli import InProcessCli, assert_one_line_error, hermetic_env, run_cli

FAKE_RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/cli_test-AbCdE12345"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(monkeypatch, capsys)


@pytest.fixture
def cli_env(moto: MotoEndpoint, resources: LocalResources) -> dict[str, str]:
    """Resources named by environment variables, as after sourcing .local/env."""
    return hermetic_env(**moto.env(), **resources.env(), AGENT_RUNTIME_ARN=FAKE_RUNTIME_ARN)


# Through the installed console script: what a user's shell runs.


def test_unknown_job_id_says_so_and_how_to_find_ids(
    cli_env: dict[str, str], resources: LocalResources
) -> None:
    run = run_cli("status", "no-such-job", env=cli_env)
    assert_one_line_error(run, "no job no-such-job", resources.table, "agentjobs list")
    assert run.code == 1


def test_no_local_env_and_no_settings_points_to_local_up(tmp_path: Path) -> None:
    run = run_cli("list", cwd=tmp_path)
    assert_one_line_error(run, "no agentjobs resources found", "make local-up", "--stack")


def test_no_credentials_says_how_to_configure_them(tmp_path: Path) -> None:
    env = hermetic_env(JOBS_TABLE="jobs", AWS_DEFAULT_REGION=REGION)
    run = run_cli("status", "some-job", env=env, cwd=tmp_path)
    assert_one_line_error(run, "no AWS credentials", "aws configure", "make local-up")


def test_usage_errors_exit_2_without_traceback() -> None:
    run = run_cli("list", "--status", "BOGUS")
    assert run.code == 2
    assert "Traceback" not in run.stderr
    assert "BOGUS" in run.stderr


# Through the same entry point in-process, for the rest of the error paths.


@pytest.mark.parametrize("command", ["result", "wait", "cancel"])
def test_unknown_job_id_is_refused_by_every_job_command(
    command: str, cli: InProcessCli, cli_env: dict[str, str]
) -> None:
    run = cli(command, "no-such-job", env=cli_env)
    assert_one_line_error(run, "no job no-such-job", "agentjobs list")


def test_missing_stack_names_the_stack_and_region(cli: InProcessCli, moto: MotoEndpoint) -> None:
    run = cli(
        "list", "--stack", "no-such-stack", "--region", REGION, env=hermetic_env(**moto.env())
    )
    assert_one_line_error(run, "stack no-such-stack not found", REGION, "make deploy")


def test_stack_without_agentjobs_outputs_is_named(cli: InProcessCli, moto: MotoEndpoint) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"SomethingElse": {"Value": "x"}},
    }
    moto.client("cloudformation").create_stack(
        StackName="not-agentjobs", TemplateBody=json.dumps(template)
    )
    run = cli("list", "--stack", "not-agentjobs", env=hermetic_env(**moto.env()))
    assert_one_line_error(run, "has no output(s)", "AgentRuntimeArn", "JobsTableName")


def test_missing_local_env_file_is_named(cli: InProcessCli, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "env"
    run = cli("list", "--local-env", str(missing), cwd=tmp_path)
    assert_one_line_error(run, f"{missing} does not exist", "make local-up")


def test_unreachable_local_stack_points_to_local_up(cli: InProcessCli, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "env").write_text(
        f"AWS_ENDPOINT_URL={dead}\nAWS_DEFAULT_REGION={REGION}\nAWS_ACCESS_KEY_ID=testing\n"
        "AWS_SECRET_ACCESS_KEY=testing\nJOBS_TABLE=jobs\n"
    )
    run = cli("status", "some-job", cwd=tmp_path)
    assert_one_line_error(run, "cannot reach", dead, "make local-up")


def test_no_region_for_a_stack_says_to_pass_one(cli: InProcessCli, tmp_path: Path) -> None:
    env = hermetic_env(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    run = cli("list", "--stack", "any", env=env, cwd=tmp_path)
    assert_one_line_error(run, "no AWS region", "--region")


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["--input", "{bad"], None, "--input is not valid JSON"),
        (["--input", "[1, 2]"], None, "must be a JSON object"),
        (["--input-file", "-"], '{"seconds": ', "--input-file - is not valid JSON"),
        (["--input-file", "/nonexistent/input.json"], None, "does not exist"),
        (["--set", "no-equals-sign"], None, "is not key=value"),
        (["--set", "csv=@/nonexistent/data.csv"], None, "does not exist"),
        (["--input", "{}", "--input-file", "x.json"], None, "not both"),
    ],
)
def test_malformed_input_is_refused_before_anything_is_sent(
    args: list[str], stdin: str | None, expected: str, cli: InProcessCli, tmp_path: Path
) -> None:
    run = cli("submit", "synthetic", *args, stdin=stdin, cwd=tmp_path)
    assert_one_line_error(run, expected)


def test_malformed_input_file_names_the_position(cli: InProcessCli, tmp_path: Path) -> None:
    bad = tmp_path / "input.json"
    bad.write_text('{"seconds": 1,\n "cpu": tru}')
    run = cli("submit", "synthetic", "--input-file", str(bad), cwd=tmp_path)
    assert_one_line_error(run, "is not valid JSON", "line 2")


def test_foreign_next_token_is_refused(cli: InProcessCli, cli_env: dict[str, str]) -> None:
    run = cli("list", "--next-token", "not-a-token", env=cli_env)
    assert_one_line_error(run, "--next-token")


def test_bad_time_bound_shows_the_accepted_forms(
    cli: InProcessCli, cli_env: dict[str, str]
) -> None:
    run = cli("list", "--since", "yesterday-ish", env=cli_env)
    assert_one_line_error(run, "--since", "30m", "ISO 8601")


def test_notifications_without_an_inbox_explains_the_topic(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources
) -> None:
    env = hermetic_env(**moto.env(), JOBS_TABLE=resources.table, TOPIC_ARN=resources.topic_arn)
    run = cli("notifications", env=env)
    assert_one_line_error(run, "INBOX_QUEUE_URL", resources.topic_arn)


def test_unreachable_runtime_on_submit_is_one_line(
    cli: InProcessCli, cli_env: dict[str, str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = {**cli_env, "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": dead}
    run = cli("submit", "synthetic", "--set", "seconds=1", env=env)
    assert_one_line_error(run, "cannot reach", "make local-up")
