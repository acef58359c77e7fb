"""The CLI prints job text as text: markup shown literally, escapes and control characters gone."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
import unicodedata
from pathlib import Path

import pytest

from agentjobs.protocol import JobStatus
from agentjobs.record import JobError, JobRecord, Progress, to_item
from emulator.resources import LocalResources
from testbed.aws import MotoEndpoint
from testbed.local_runtime import RUNTIME_ARN, agent_cmd, local_runtime
from tests.agents.hostile_agent import ESCAPES, MARKUP
from tests.support.cli import AGENTJOBS, CliRun, InProcessCli, hermetic_env

HOSTILE = f"{MARKUP}{ESCAPES}"
JOB_ID = "evil-[/bold]-job"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(monkeypatch, capsys)


@pytest.fixture
def env_file(tmp_path: Path, moto: MotoEndpoint, resources: LocalResources) -> Path:
    path = tmp_path / "env"
    values = {**moto.env(), **resources.env()}
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def put_job(
    moto: MotoEndpoint, resources: LocalResources, job_id: str, status: JobStatus, **fields: object
) -> JobRecord:
    record = JobRecord(
        job_id=job_id,
        session_id=f"session-{MARKUP}-{'x' * 30}",
        kind="synthetic",
        status=status,
        submitted_at="2026-11-20T10:00:00.000Z",
        updated_at="2026-11-20T10:00:10.000Z",
        max_runtime_s=3600,
        deadline_at="2026-11-20T12:00:00.000Z",
        finished_at=None if status == JobStatus.RUNNING else "2026-11-20T10:00:30.000Z",
        progress=Progress(40.0, HOSTILE),
        **fields,  # type: ignore[arg-type]
    )
    moto.client("dynamodb").put_item(TableName=resources.table, Item=to_item(record))
    return record


def assert_printed_as_text(text: str) -> None:
    """Markup shown as typed, no escape sequence or control character left."""
    assert "[link=https://evil.example/x]click here[/link]" in text
    assert "[/bold]" in text
    assert "evil.example/y" not in text  # the hidden hyperlink's target went with its escape
    unsafe = [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cs")]
    assert unsafe == [], unsafe
    assert not set(BIDI) & set(text)


def assert_clean_run(run: CliRun, code: int = 0) -> None:
    assert run.code == code, str(run)
    assert "Traceback" not in run.stdout + run.stderr
    assert "unexpected" not in run.stderr, run.stderr


def test_status_shows_job_text_as_text(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    put_job(moto, resources, JOB_ID, JobStatus.FAILED, error=JobError("JOB_FAILED", HOSTILE))
    run = cli("status", JOB_ID, "--local-env", str(env_file))
    assert_clean_run(run)
    assert JOB_ID in run.stdout
    assert_printed_as_text(run.stdout)
    assert run.stdout.count("[link=https://evil.example/x]") >= 3  # progress, session, error


def test_json_keeps_job_text_exact_but_escapes_what_a_terminal_would_obey(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    put_job(moto, resources, JOB_ID, JobStatus.FAILED, error=JobError("JOB_FAILED", HOSTILE))
    run = cli("status", JOB_ID, "--json", "--local-env", str(env_file))
    assert_clean_run(run)
    assert run.json()["error"]["message"] == HOSTILE
    assert run.json()["progress"]["message"] == HOSTILE
    raw = [c for c in run.stdout if c != "\n" and unicodedata.category(c) == "Cc"]
    assert raw == []
    assert not set(BIDI) & set(run.stdout)


def test_list_shows_job_ids_as_text(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    put_job(moto, resources, f"job-{MARKUP}", JobStatus.RUNNING)
    run = cli("list", "--local-env", str(env_file))
    assert_clean_run(run)
    assert f"job-{MARKUP}" in run.stdout


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(HOSTILE, id="text"),
        pytest.param({"note": HOSTILE, "rows": 3}, id="json"),
        pytest.param(
            {"markdown": f"# Report\n\n{HOSTILE}\n\nSee [the data](https://evil.example/md).\n"},
            id="markdown",
        ),
    ],
)
def test_result_shows_job_text_as_text(
    cli: InProcessCli,
    moto: MotoEndpoint,
    resources: LocalResources,
    env_file: Path,
    result: object,
) -> None:
    put_job(moto, resources, JOB_ID, JobStatus.SUCCEEDED, result=result)
    run = cli("result", JOB_ID, "--local-env", str(env_file))
    assert_clean_run(run)
    if isinstance(result, dict) and "markdown" in result:
        assert "https://evil.example/md" in run.stdout  # a Markdown link shows where it goes
    assert_printed_as_text(run.stdout)


def test_errors_carrying_job_text_stay_one_clean_line(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    put_job(moto, resources, JOB_ID, JobStatus.FAILED, error=JobError("JOB_FAILED", HOSTILE))
    run = cli("result", JOB_ID, "--local-env", str(env_file))
    assert run.code == 3, str(run)
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert_printed_as_text(run.stderr)


def test_wait_prints_the_ending_as_text(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    put_job(moto, resources, JOB_ID, JobStatus.FAILED, error=JobError("JOB_FAILED", HOSTILE))
    run = cli("wait", JOB_ID, "--local-env", str(env_file))
    assert_clean_run(run, 3)
    assert_printed_as_text(run.stdout)


def test_notifications_show_job_text_as_text(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, env_file: Path
) -> None:
    message = {"job_id": JOB_ID, "status": "FAILED", "kind": "synthetic", "error": HOSTILE}
    moto.client("sns").publish(
        TopicArn=resources.topic_arn,
        MessageStructure="json",
        Message=json.dumps({"default": json.dumps(message), "email": HOSTILE}),
        Subject=MARKUP,
    )
    run = cli("notifications", "--wait", "5", "--local-env", str(env_file))
    assert_clean_run(run)
    assert JOB_ID in run.stdout
    assert_printed_as_text(run.stdout)


def test_submit_and_cancel_show_the_agents_answers_as_text(
    cli: InProcessCli, moto: MotoEndpoint, resources: LocalResources, tmp_path: Path
) -> None:
    with local_runtime(agent_cmd_line=agent_cmd("hostile_agent")) as runtime:
        env_file = tmp_path / "env"
        values = {
            **moto.env(),
            **resources.env(),
            "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": runtime.url,
            "AGENT_RUNTIME_ARN": RUNTIME_ARN,
        }
        env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        submitted = cli("submit", "synthetic", "--local-env", str(env_file))
        assert_clean_run(submitted)
        assert_printed_as_text(submitted.stdout)
        put_job(moto, resources, JOB_ID, JobStatus.RUNNING)
        cancelled = cli("cancel", JOB_ID, "--local-env", str(env_file))
        assert_clean_run(cancelled)
        assert_printed_as_text(cancelled.stdout)


def run_in_terminal(args: list[str], cwd: Path, timeout_s: float = 60) -> tuple[int, str]:
    """Run the console script with a pseudo-terminal as stdout: the progress bar's path."""
    leader, follower = pty.openpty()
    env = hermetic_env(TERM="xterm-256color")
    env.pop("COLUMNS", None)
    proc = subprocess.Popen(
        [str(AGENTJOBS), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=follower
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_wait_in_a_terminal_shows_progress_text_as_text(
    moto: MotoEndpoint, resources: LocalResources, env_file: Path, tmp_path: Path
) -> None:
    put_job(moto, resources, JOB_ID, JobStatus.FAILED, error=JobError("JOB_FAILED", HOSTILE))
    code, shown = run_in_terminal(["wait", JOB_ID, "--local-env", str(env_file)], tmp_path)
    assert code == 3, shown
    assert "[/bold]" in shown
    for sequence in ("\x1b]8;;https://evil.example", "\x1b[2J", "\x07", "\x9b", "\u202e"):
        assert sequence not in shown, repr(shown)
