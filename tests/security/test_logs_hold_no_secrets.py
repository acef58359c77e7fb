"""Jobs whose input holds a marker and a fake secret run through the real agent, the local
runtime and the poller's Lambda handler at INFO: neither string may reach any log."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.resources import LocalResources
from testbed.aws import REGION, MotoEndpoint
from testbed.local_runtime import RUNTIME_ARN, RuntimeProcess, local_runtime
from testbed.poller import AGENT_CMD
from testbed.processes import REPO, VENV_BIN, stop_process_group

MARKER = f"payload-marker-{uuid.uuid4().hex}"
SECRET = f"AKIA{uuid.uuid4().hex[:16].upper()}"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "LOST"}


@pytest.fixture
def stack(
    moto: MotoEndpoint, resources: LocalResources, tmp_path: Path
) -> Iterator[tuple[RuntimeProcess, Path]]:
    """The local runtime (real agent, its output per session in files) and the poller's
    handler on a schedule, as `make local-up` runs them; every log under tmp_path."""
    env = {
        **moto.env(),
        **resources.env(),
        "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": "",
        "JOBAGENT_SCRIPTED_MODEL": "1",
    }
    with local_runtime(
        agent_cmd_line=AGENT_CMD,
        env=env,
        extra_args=["--agent-log-dir", str(tmp_path / "agents")],
        log_path=tmp_path / "runtime.log",
    ) as runtime:
        poller_env = {
            **os.environ,
            **moto.env(),
            **resources.env(),
            "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": runtime.url,
            "AGENT_RUNTIME_ARN": RUNTIME_ARN,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POLLER_READ_TIMEOUT_S": "10",
            "POLLER_LEASE_S": "20",
            "POLLER_SAFETY_MARGIN_S": "2",
        }
        with open(tmp_path / "poller.log", "wb") as log:
            poller = subprocess.Popen(
                [
                    str(VENV_BIN / "python"),
                    "-m",
                    "emulator.stack.schedule",
                    "--interval-s",
                    "0.5",
                    "--timeout-s",
                    "30",
                    "--region",
                    REGION,
                    "--ready-file",
                    str(tmp_path / "poller.ready"),
                ],
                cwd=REPO,
                env=poller_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                yield runtime, tmp_path
            finally:
                stop_process_group(poller)


def _submit(runtime: RuntimeProcess, kind: str, job_input: dict[str, Any]) -> tuple[str, str]:
    """Submit in a fresh session; (job id, session id)."""
    session_id = f"secrets-session-{uuid.uuid4().hex}"
    answer = runtime.invoke(
        session_id,
        {
            "action": "submit",
            "kind": kind,
            "input": job_input,
            "client_token": f"{MARKER}-{uuid.uuid4().hex[:8]}",
        },
    )
    assert answer.get("status") == "RUNNING", answer
    return str(answer["job_id"]), session_id


def test_payload_content_and_secrets_never_reach_the_logs(
    stack: tuple[RuntimeProcess, Path], moto: MotoEndpoint, resources: LocalResources
) -> None:
    runtime, logs = stack
    words = f"{MARKER} {SECRET}"
    submitted = [
        _submit(runtime, "synthetic", {"seconds": 0.2, "fail": words}),
        _submit(runtime, "data_report", {"csv": f"name,key\n{MARKER},{SECRET}\nb,2\n"}),
        _submit(runtime, "agent", {"prompt": f"Summarise {words}", "steps": 1}),
        _submit(runtime, "synthetic", {"seconds": 0.2, "result_bytes": 100_000}),
    ]
    jobs = [job_id for job_id, _ in submitted]
    # A refused request with the marker in it: the refusal is logged, its content is not. To
    # a session already running (its agent logs it as a fresh one's would), not a fresh agent.
    refused = runtime.invoke(
        submitted[0][1], {"action": "submit", "kind": "nope", "input": {"x": words}}
    )
    assert "error" in refused
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=moto.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    deadline = time.monotonic() + 120
    while True:
        items = [
            ddb.get_item(TableName=resources.table, Key={"job_id": {"S": j}}, ConsistentRead=True)[
                "Item"
            ]
            for j in jobs
        ]
        if all(i["status"]["S"] in TERMINAL and "session_stopped_at" in i for i in items):
            break
        assert time.monotonic() < deadline, items
        time.sleep(0.2)
    assert {i["status"]["S"] for i in items} >= {"SUCCEEDED", "FAILED"}, items
    files = [logs / "runtime.log", logs / "poller.log", *(logs / "agents").glob("*.log")]
    assert len(files) >= 2 + len(jobs), files
    text = {f.name: f.read_text(errors="replace") for f in files}
    assert "poller pass done" in text["poller.log"]  # the poller did log, at INFO
    leaks = {
        name: [line[:300] for line in body.splitlines() if MARKER in line or SECRET in line]
        for name, body in text.items()
    }
    assert not {name: lines for name, lines in leaks.items() if lines}
