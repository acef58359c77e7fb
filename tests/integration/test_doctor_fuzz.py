"""Hypothesis over `agentjobs doctor`'s options, through the CLI's entry point against moto:
never a traceback; a failure is a report whose misses name a fix, or one line on stderr."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from emulator.ports import free_port
from testbed.aws import moto_server
from tests.support.cli import CliRun, InProcessCli, hermetic_env
from tests.support.fuzzing import fuzz_settings, soak

OPTIONS = ["--region", "--model-id", "--stack", "--tracing", "--json", "--help", "--"]
VALUES = [
    "us-east-1",
    "af-south-1",
    "us-east-1\n",
    "eu-west-1",
    "moon-1",
    "",
    " ",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "amazon.nova-pro-v1:0",
    "anthropic.claude\n",
    "arn:aws:bedrock:us-east-1::foundation-model/x",
    "AgentJobs",
    "1bad",
    "-",
    "\u00e9\u6f22",
    "%s%n",
]
argvs = st.lists(
    st.sampled_from(OPTIONS) | st.sampled_from(VALUES) | st.text(max_size=10), max_size=5
)


@pytest.fixture(scope="module")
def doctor_env() -> Iterator[dict[str, str]]:
    """moto for STS, CloudFormation, SSM, SNS and AgentCore; Bedrock and X-Ray refused at once."""
    closed = f"http://127.0.0.1:{free_port()}"
    with moto_server() as moto:
        yield hermetic_env(
            **moto.env(),
            AWS_ENDPOINT_URL_BEDROCK=closed,
            AWS_ENDPOINT_URL_XRAY=closed,
            AWS_MAX_ATTEMPTS="1",
        )


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(monkeypatch, capsys)


def assert_clean(run: CliRun) -> None:
    out = run.stdout + run.stderr
    assert "Traceback" not in out, str(run)
    assert "error: unexpected" not in run.stderr, str(run)
    assert run.code in {0, 1, 2}, str(run)
    if run.code == 0 or "--help" in run.args:
        return
    if run.stderr.strip():
        lines = run.stderr.strip().splitlines()
        # Typer's own usage errors (a missing option value) draw a box; ours are one line.
        typer_usage = run.code == 2 and ("╭─ Error" in run.stderr or "Usage:" in run.stderr)
        assert typer_usage or (len(lines) == 1 and lines[0].startswith("agentjobs: error: ")), str(
            run
        )
        return
    if "--json" in run.args:
        report = json.loads(run.stdout)
        assert all(entry["ok"] or entry["fix"] for entry in report), str(run)
    else:
        misses = [line for line in run.stdout.splitlines() if line.startswith("✗ ")]
        assert misses and all(" -- fix: " in line for line in misses), str(run)


# Each example is a doctor run in this process (about a tenth of a second): `make test` runs
# a third of the former count beside the pinned cases, the slow run a soak.
@fuzz_settings(20)
@given(argv=argvs)
@example(argv=["--region", "us-east-1\n"])
@example(argv=["--model-id", "anthropic.claude\n", "--json"])
@example(argv=["--stack", "AgentJobs", "--tracing", "--json"])
@example(argv=["--region", "af-south-1", "--stack", "1bad"])
def test_any_doctor_options_end_cleanly(
    cli: InProcessCli, doctor_env: dict[str, str], argv: list[str]
) -> None:
    assert_clean(cli("doctor", *argv, env=doctor_env))


@soak(200)
@given(argv=argvs)
def test_many_doctor_options_end_cleanly(
    cli: InProcessCli, doctor_env: dict[str, str], argv: list[str]
) -> None:
    assert_clean(cli("doctor", *argv, env=doctor_env))
