"""Hypothesis over the CLI's arguments and over the job text it shows, through its real entry
point: never a traceback, never an unexpected error; a failure is a message on stderr and a
non-zero exit code; job text is printed as text (no markup, no terminal control)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agentjobs.protocol import JobStatus
from agentjobs.record import JobError, JobRecord, Progress, to_item
from emulator.ports import free_port
from emulator.resources import LocalResources
from testbed.aws import MotoEndpoint
from tests.support.cli import CliRun, InProcessCli, hermetic_env, run_cli
from tests.support.fuzzing import fuzz_settings, soak
from tests.support.hostile_text import encodes, hostile_text, long_text

COMMANDS = ["submit", "status", "list", "result", "wait", "cancel", "notifications", "--help", ""]
OPTIONS = [
    "--json",
    "--input",
    "--input-file",
    "--client-token",
    "--max-runtime-s",
    "--timeout",
    "--interval",
    "--status",
    "--kind",
    "--since",
    "--until",
    "--limit",
    "--next-token",
    "--output",
    "--job",
    "--max",
    "--keep",
    "--stack",
    "--region",
    "--local-env",
    "--help",
    "--wait",
    "-",
    "--",
]
VALUES = [
    "0",
    "-1",
    "0.05",
    "1e999",
    "nan",
    "inf",
    "abc",
    "",
    "{}",
    '{"seconds": 0}',
    "[1,",
    "synthetic",
    "data_report",
    "RUNNING",
    "SUCCEEDED",
    "7d",
    "2026-13-45T99:99:99Z",
    "-5m",
    "no-such-job",
    "eyJub3QiOiAidG9rZW4ifQ==",
    "%%%",
    "/nonexistent/file",
    "\u00e9\u6f22",
]
argvs = st.lists(
    st.sampled_from(OPTIONS) | st.sampled_from(VALUES) | hostile_text, max_size=6
).flatmap(lambda rest: st.sampled_from(COMMANDS).map(lambda cmd: [c for c in [cmd] if c] + rest))


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(monkeypatch, capsys)


@pytest.fixture(scope="module")
def fuzz_resources(moto: MotoEndpoint) -> LocalResources:
    return moto.create_resources()


@pytest.fixture(scope="module")
def moto_env(moto: MotoEndpoint, fuzz_resources: LocalResources) -> dict[str, str]:
    resources = fuzz_resources
    # AgentCore calls go to a closed port: refused at once, never a hang.
    closed = f"http://127.0.0.1:{free_port()}"
    return hermetic_env(
        **moto.env(),
        **resources.env(),
        AGENT_RUNTIME_ARN="arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/fz-AbCdE12345",
        AWS_ENDPOINT_URL_BEDROCK_AGENTCORE=closed,
        AWS_MAX_ATTEMPTS="1",
    )


def assert_clean(run: CliRun) -> None:
    out = run.stdout + run.stderr
    assert "Traceback" not in out, str(run)
    assert "error: unexpected" not in run.stderr, str(run)
    if run.code != 0:
        # A message: on stderr, or the usage that a bare `agentjobs` prints.
        assert run.stderr.strip() or "Usage:" in run.stdout, str(run)


# Each example is a CLI run in this process (tens of milliseconds): `make test` runs a third
# of the former count beside the pinned cases, the slow run a soak.
@fuzz_settings(50)
@given(argv=argvs, with_stack=st.booleans())
@example(argv=["notifications", "--wait", "nan"], with_stack=True)
@example(argv=["wait", "no-such-job", "--interval", "nan"], with_stack=True)
@example(argv=["list", "--limit", "0", "--since", "1e999"], with_stack=True)
@example(argv=["submit", "synthetic", "--input", '{"seconds": 0}', "--json"], with_stack=True)
@example(argv=["result", "no-such-job", "--output", "/nonexistent/x"], with_stack=True)
def test_any_arguments_end_cleanly(
    cli: InProcessCli, moto_env: dict[str, str], argv: list[str], with_stack: bool
) -> None:
    run = cli(*argv, env=moto_env if with_stack else None)
    assert_clean(run)


@soak(500)
@given(argv=argvs, with_stack=st.booleans())
def test_many_arguments_end_cleanly(
    cli: InProcessCli, moto_env: dict[str, str], argv: list[str], with_stack: bool
) -> None:
    run = cli(*argv, env=moto_env if with_stack else None)
    assert_clean(run)


def test_console_script_fails_cleanly_on_nonsense() -> None:
    run = run_cli("list", "--since", "\u00e9", "--limit", "nan")
    assert_clean(run)
    assert run.code != 0


MARKUP = [
    "[/bold]",
    "[link=https://example.invalid/x]click[/link]",
    "[red]",
    "\x1b[31m",
    "\r",
    "\x07",
]
# What a job, or an agent's answer, may have put in a record: markup, terminal control,
# any text DynamoDB can hold (valid Unicode), and text far past every bound.
job_texts = (
    st.lists(st.sampled_from(MARKUP) | hostile_text, min_size=1, max_size=4).map("".join)
    | long_text(2_000)
    | st.sampled_from(["x" * 200_000, "[/bold]" * 1_000])
).filter(encodes)


def _put_failed_job(moto: MotoEndpoint, resources: LocalResources, text: str) -> str:
    job_id = uuid.uuid4().hex
    record = JobRecord(
        job_id=job_id,
        session_id=f"fuzz-session-{uuid.uuid4().hex}",
        kind="synthetic",
        status=JobStatus.FAILED,
        submitted_at="2026-11-20T10:00:00.000Z",
        updated_at="2026-11-20T10:00:30.000Z",
        max_runtime_s=3600,
        deadline_at="2026-11-20T11:00:00.000Z",
        finished_at="2026-11-20T10:00:30.000Z",
        progress=Progress(40.0, text),
        error=JobError("JOB_FAILED", text),
    )
    moto.client("dynamodb").put_item(TableName=resources.table, Item=to_item(record))
    return job_id


@fuzz_settings(15)
@given(text=job_texts)
@example(text="[/bold]")
@example(text="[link=https://example.invalid/phish]your job[/link] \x1b]8;;x\x1b\\")
def test_job_text_is_shown_as_text(
    cli: InProcessCli,
    moto: MotoEndpoint,
    fuzz_resources: LocalResources,
    moto_env: dict[str, str],
    text: str,
) -> None:
    _shown_as_text(cli, moto, fuzz_resources, moto_env, text)


@soak(200)
@given(text=job_texts)
def test_much_job_text_is_shown_as_text(
    cli: InProcessCli,
    moto: MotoEndpoint,
    fuzz_resources: LocalResources,
    moto_env: dict[str, str],
    text: str,
) -> None:
    _shown_as_text(cli, moto, fuzz_resources, moto_env, text)


def _shown_as_text(
    cli: InProcessCli,
    moto: MotoEndpoint,
    resources: LocalResources,
    moto_env: dict[str, str],
    text: str,
) -> None:
    job_id = _put_failed_job(moto, resources, text)
    for command, code in (("status", 0), ("result", 3)):
        run = cli(command, job_id, env=moto_env)
        assert_clean(run)
        assert run.code == code, str(run)[:800]
        # Control characters would reach the user's terminal (colours, titles, hyperlinks).
        assert "\x1b" not in run.stdout and "\x07" not in run.stdout, repr(run.stdout[:300])
    if text == "[/bold]":
        assert "[/bold]" in run.stdout + run.stderr, str(run)
