"""A whole local stack (`python -m emulator.stack up`) in its own state directory, and what a
test or benchmark reads from it: the env file, the inbox with SNS timestamps, the poller log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.config import Config

from agentjobs.cli.inbox import unwrap
from agentjobs.envfile import read_env_file
from agentjobs.invocation import decode_answer, invoke_session
from testbed.aws import shared_client
from testbed.local_runtime import listed_sessions
from testbed.processes import REPO


@dataclass(frozen=True)
class Notified:
    """One notification taken from the inbox: its job, and when SNS stamped it."""

    job_id: str
    status: str
    finished_at: str
    sns_timestamp: str
    received_at: float
    """time.time() when this harness received the message."""


@dataclass(frozen=True)
class LocalStack:
    """A running local stack."""

    state_dir: Path

    def values(self) -> dict[str, str]:
        return read_env_file(self.state_dir / "env")

    def client(self, service: str, **config: Any) -> Any:
        values = self.values()
        endpoint = (
            values["AWS_ENDPOINT_URL_BEDROCK_AGENTCORE"]
            if service == "bedrock-agentcore"
            else values["AWS_ENDPOINT_URL"]
        )
        return shared_client(
            service,
            endpoint_url=endpoint,
            region_name=values["AWS_DEFAULT_REGION"],
            aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"total_max_attempts": 1}, **config),
        )

    def invoke(
        self, session_id: str, payload: dict[str, Any], client: Any | None = None
    ) -> dict[str, Any]:
        """Send one request to a session through the local runtime; the agent's answer. A
        session still starting or stopping answers RetryableConflictException: retried after
        a short wait, as AWS advises."""
        client = client or self.client("bedrock-agentcore", read_timeout=60)
        runtime_arn = self.values()["AGENT_RUNTIME_ARN"]
        for attempt in range(50):
            try:
                _, answer = invoke_session(client, runtime_arn, session_id, payload)
                break
            except client.exceptions.RetryableConflictException:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        body = decode_answer(answer)
        assert isinstance(body, dict), body
        return body

    def session_states(self) -> dict[str, str]:
        """Each session's state (Active, Idle, Stopped), as the local runtime lists them."""
        listed = listed_sessions(self.values()["LOCAL_RUNTIME_URL"])
        return {session_id: session["state"] for session_id, session in listed.items()}

    def submit(self, client: Any, session_id: str, **job: Any) -> str:
        """Submit a job through the local runtime; its job id."""
        body = self.invoke(session_id, {"action": "submit", **job}, client)
        assert body.get("status") == "RUNNING", body
        return str(body["job_id"])

    def take_notifications(self, sqs: Any, wait_s: int = 1) -> list[Notified]:
        """Receive (and delete) what the inbox holds now, waiting up to `wait_s` for some."""
        queue_url = self.values()["INBOX_QUEUE_URL"]
        found: list[Notified] = []
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s
        ).get("Messages", [])
        received_at = time.time()
        for message in messages:
            document, envelope = unwrap(message["Body"])
            found.append(
                Notified(
                    job_id=document["job_id"],
                    status=document["status"],
                    finished_at=document["finished_at"],
                    sns_timestamp=envelope["Timestamp"],
                    received_at=received_at,
                )
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def ticks_done(self) -> int:
        """Scheduled ticks the poller schedule has finished so far (from its log)."""
        log = self.state_dir / "poller.log"
        return sum(1 for line in log.read_text().splitlines() if " tick done in " in line)

    def signal_batches(self) -> int:
        """Batches of completion signals the local event source has handed the poller."""
        log = self.state_dir / "poller.log"
        return sum(
            1
            for line in log.read_text().splitlines()
            if "emulator.stack.event_source" in line and " signal(s) in " in line
        )


def _stack_command(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.stack", action],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def local_stack(
    state_dir: Path, *, poller_interval_s: float, fastpath: bool, **extra_env: str
) -> Iterator[LocalStack]:
    """`local-up` with these settings; `local-down` when the block ends, whatever happened."""
    env = {
        **os.environ,
        "LOCAL_STATE_DIR": str(state_dir),
        "POLLER_INTERVAL_S": f"{poller_interval_s:g}",
        "LOCAL_FASTPATH": "1" if fastpath else "0",
        **extra_env,
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", "COMPLETION_QUEUE_URL"):
        env.pop(name, None)
    started = _stack_command("up", env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield LocalStack(state_dir)
    finally:
        _stack_command("down", env)
