"""The local stack end to end: make local-up, the CLI through a job's life, make local-down."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import psutil
import pytest

from agentjobs.cli.inbox import unwrap
from emulator.stack.state import PID_KEYS
from testbed.processes import REPO
from tests.support.cli import CliRun, assert_one_line_error, hermetic_env, run_cli

SAMPLE_CSV = REPO / "samples" / "outdoor_orders.csv"


@dataclass(frozen=True)
class Stack:
    """A local stack started by `make local-up` in its own state directory."""

    state_dir: Path
    make_env: dict[str, str]

    @property
    def env_file(self) -> Path:
        return self.state_dir / "env"

    def values(self) -> dict[str, str]:
        lines = self.env_file.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line and line[0] != "#")

    def cli(self, *args: str, stdin: str | None = None) -> CliRun:
        return run_cli(*args, "--local-env", str(self.env_file), stdin=stdin)

    def client(self, service: str):  # type: ignore[no-untyped-def]
        values = self.values()
        return boto3.client(
            service,
            endpoint_url=values["AWS_ENDPOINT_URL"],
            region_name=values["AWS_DEFAULT_REGION"],
            aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
        )


def make(target: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a make target as a user would; `-o` keeps make from reinstalling the venv."""
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", target],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("local-stack")
    env = {**os.environ, "LOCAL_STATE_DIR": str(state_dir), "POLLER_INTERVAL_S": "1"}
    started = make("local-up", env)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "Local stack up" in started.stdout
    try:
        yield Stack(state_dir, env)
    finally:
        # The last test takes the stack down itself; this only cleans up after a failure.
        make("local-down", env)


def wait_for(stack: Stack, job_id: str) -> CliRun:
    return stack.cli("wait", job_id, "--json", "--interval", "0.3", "--timeout", "60")


def test_env_file_holds_the_contract_keys(stack: Stack) -> None:
    values = stack.values()
    for key in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "JOBS_TABLE",
        "RESULTS_BUCKET",
        "TOPIC_ARN",
        "AGENT_RUNTIME_ARN",
        "INBOX_QUEUE_URL",
        "LOCAL_RUNTIME_URL",
        *PID_KEYS.values(),
    ):
        assert values.get(key), key
    assert values["AGENT_RUNTIME_ARN"].startswith("arn:aws:bedrock-agentcore:")


def test_second_local_up_says_it_is_running_and_starts_nothing(stack: Stack) -> None:
    before = stack.values()
    again = make("local-up", stack.make_env)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert stack.values() == before


def test_data_report_runs_to_success_is_listed_stored_and_notified(stack: Stack) -> None:
    job_input = json.dumps({"csv": SAMPLE_CSV.read_text(), "title": "Orders"})
    submitted = stack.cli("submit", "data_report", "--input-file", "-", "--json", stdin=job_input)
    assert submitted.code == 0, str(submitted)
    job_id, session_id = submitted.json()["job_id"], submitted.json()["session_id"]
    assert len(session_id) >= 33

    waited = wait_for(stack, job_id)
    assert waited.code == 0, str(waited)
    assert waited.json()["status"] == "SUCCEEDED"

    listed = stack.cli("list", "--kind", "data_report", "--json").json()["jobs"]
    assert job_id in [job["job_id"] for job in listed]

    result = stack.cli("result", job_id, "--json").json()["result"]
    assert result["markdown"].startswith("# Orders")

    item = stack.client("dynamodb").get_item(
        TableName=stack.values()["JOBS_TABLE"], Key={"job_id": {"S": job_id}}, ConsistentRead=True
    )["Item"]
    assert item["status"]["S"] == "SUCCEEDED"
    assert item["session_id"]["S"] == session_id

    # The poller notifies after recording the outcome; the CLI waits for the message.
    shown = stack.cli("notifications", "--job", job_id, "--wait", "30", "--json")
    notes = shown.json()["notifications"]
    assert [n["message"]["job_id"] for n in notes] == [job_id]
    assert notes[0]["message"]["status"] == "SUCCEEDED"
    assert notes[0]["envelope"]["Type"] == "Notification"
    assert stack.cli("notifications", "--job", job_id, "--json").json()["notifications"] == []


def test_a_retried_submit_with_its_client_token_finds_the_first_job(stack: Stack) -> None:
    # A token is scoped to the caller's session: the CLI sends a retry to the same session.
    token = f"report-{os.getpid()}"
    args = ("submit", "synthetic", "--input", '{"seconds": 0.2}', "--json")
    first = stack.cli(*args, "--client-token", token)
    again = stack.cli(*args, "--client-token", token)
    assert first.code == 0 and again.code == 0, (str(first), str(again))
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.json()["session_id"] == first.json()["session_id"]
    other = stack.cli(*args, "--client-token", token + "-other").json()
    assert other["job_id"] != first.json()["job_id"]
    changed = stack.cli(
        "submit", "synthetic", "--input", '{"seconds": 0.3}', "--client-token", token
    )
    assert changed.code != 0
    assert "IDEMPOTENCY_MISMATCH" in changed.stderr


def test_large_result_is_read_back_from_s3(stack: Stack) -> None:
    submitted = stack.cli(
        "submit", "synthetic", "--set", "seconds=0.5", "--set", "result_bytes=100000", "--json"
    )
    job_id = submitted.json()["job_id"]
    assert wait_for(stack, job_id).code == 0
    status = stack.cli("status", job_id, "--json").json()
    assert status["result_uri"].startswith(f"s3://{stack.values()['RESULTS_BUCKET']}/")
    result = stack.cli("result", job_id, "--json").json()["result"]
    assert len(json.dumps(result)) >= 100_000


def test_inbox_receives_the_notification_with_the_sns_envelope(stack: Stack) -> None:
    submitted = stack.cli("submit", "synthetic", "--set", "seconds=0.2", "--json")
    job_id = submitted.json()["job_id"]
    assert wait_for(stack, job_id).code == 0
    sqs = stack.client("sqs")
    queue_url = stack.values()["INBOX_QUEUE_URL"]
    found = None
    for _ in range(15):
        for raw in sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2, VisibilityTimeout=0
        ).get("Messages", []):
            document, envelope = unwrap(raw["Body"])
            if document.get("job_id") == job_id:
                found = envelope
        if found:
            break
    assert found is not None
    assert found["TopicArn"] == stack.values()["TOPIC_ARN"]
    assert found["MessageAttributes"]["status"]["Value"] == "SUCCEEDED"


def test_cancel_ends_a_running_job_and_wait_exits_4(stack: Stack) -> None:
    submitted = stack.cli("submit", "synthetic", "--set", "seconds=120", "--json")
    job_id = submitted.json()["job_id"]
    cancelled = stack.cli("cancel", job_id, "--json")
    assert cancelled.code == 0, str(cancelled)
    assert cancelled.json()["status"] == "CANCELLED"
    waited = wait_for(stack, job_id)
    assert waited.code == 4, str(waited)
    assert waited.json()["status"] == "CANCELLED"


def sessions(stack: Stack) -> dict[str, str]:
    """Session id -> state, as the local runtime reports them."""
    url = f"{stack.values()['LOCAL_RUNTIME_URL']}/sessions"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return {s["sessionId"]: s["state"] for s in json.load(answer)["sessions"]}


def test_unknown_kind_shows_the_agents_error_and_stops_the_session(stack: Stack) -> None:
    before = sessions(stack)
    run = stack.cli("submit", "astrology", "--set", "sign=leo")
    assert_one_line_error(run, "the agent refused the request", "UNKNOWN_KIND", "data_report")
    new = {sid: state for sid, state in sessions(stack).items() if sid not in before}
    assert len(new) == 1
    assert all(state == "Stopped" for state in new.values()), new


def test_a_second_checkout_gets_its_own_ports(stack: Stack, tmp_path: Path) -> None:
    other_env = {**hermetic_env(), "LOCAL_STATE_DIR": str(tmp_path / "other")}
    other_env["PATH"] = os.environ["PATH"]
    # A stale record (after a reboot, say) whose pid now belongs to someone else.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "env").write_text(
        f"MOTO_PID={os.getpid()}\nLOCAL_STACK_STARTED_AT=1000\n"
    )
    try:
        assert make("local-up", other_env).returncode == 0
        other = Stack(tmp_path / "other", other_env)
        for key in ("AWS_ENDPOINT_URL", "LOCAL_RUNTIME_URL"):
            assert other.values()[key] != stack.values()[key]
        assert other.cli("list", "--json").json()["jobs"] == []
    finally:
        assert make("local-down", other_env).returncode == 0


def test_local_down_stops_every_process_it_started(stack: Stack) -> None:
    # A job still running at local-down: its agent process must go too.
    submitted = stack.cli("submit", "synthetic", "--set", "seconds=300", "--json")
    assert submitted.code == 0, str(submitted)
    recorded = [int(stack.values()[key]) for key in PID_KEYS.values()]
    family = []
    for pid in recorded:
        leader = psutil.Process(pid)
        family += [leader, *leader.children(recursive=True)]
    assert len(family) > len(recorded), "the running job's agent process should be there"
    stopped = make("local-down", stack.make_env)
    assert stopped.returncode == 0, stopped.stderr
    assert not stack.env_file.exists()
    left = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == []
    assert "nothing to stop" in make("local-down", stack.make_env).stdout
