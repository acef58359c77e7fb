"""Run what we ship: the agent and the poller from their deploy bundles alone, one job end to end.

Both bundles are built by the deploy's own bundling code (cached under .build/), for this
machine's architecture and Python instead of Graviton's, then run by the base interpreter
with `-I -S` from the bundle's folder: nothing from the repository or the venv is
importable, so a module the deploy would leave out fails here. `-B` because the deployed
code's folder is read-only: nothing is written into the bundle.
"""

from __future__ import annotations

import json
import os
import platform
import select
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from emulator.resources import LocalResources
from emulator.stack.schedule import scheduled_event
from infra.bundling import PROJECT_ROOT, PythonBundle
from infra.poller import HANDLER, METRICS_NAMESPACE, SERVICE_NAME, poller_bundle
from infra.runtime import ENTRYPOINT, agent_bundle
from testbed.aws import REGION, MotoEndpoint
from testbed.inbox import drain_inbox
from testbed.local_runtime import RUNTIME_ARN, RuntimeProcess, local_runtime, new_session_id
from testbed.processes import stop_process_group

DRIVER = Path(__file__).resolve().parents[1] / "support" / "from_bundle.py"
BASE_PYTHON = str(getattr(sys, "_base_executable", "") or sys.executable)
"""The interpreter the venv was made from: it has no site-packages of ours."""
THIS_PLATFORM = f"manylinux2014_{platform.machine()}"
THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
GIVE_UP_S = 120.0

# manylinux wheels, and the agent's ELF extensions, run on Linux alone.
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the bundles run on Linux only")


@dataclass(frozen=True)
class Shipped:
    """The two bundles, unpacked, as the deploy would zip them."""

    agent: Path
    poller: Path


def for_this_machine(bundle: PythonBundle) -> PythonBundle:
    """The same bundle, with wheels this machine can run."""
    return replace(bundle, platform=THIS_PLATFORM, python_version=THIS_PYTHON)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Shipped:
    root = tmp_path_factory.mktemp("shipped")
    built = Shipped(agent=root / "agent", poller=root / "poller")
    cache = PROJECT_ROOT / ".build"
    for_this_machine(agent_bundle(PROJECT_ROOT)).build(built.agent, cache)
    for_this_machine(poller_bundle(PROJECT_ROOT)).build(built.poller, cache)
    return built


class BundledLambda:
    """A Lambda handler in its own process, imported from its bundle: one event in, one
    answer out, the same (warm) process for every call."""

    def __init__(self, proc: subprocess.Popen[str], stderr_path: Path) -> None:
        self._proc = proc
        self._stderr_path = stderr_path
        self.ready = self._answer(timeout_s=60)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Call the handler with `event`; the driver's answer (`result` or `error`)."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(event) + "\n")
        self._proc.stdin.flush()
        return self._answer(timeout_s=90)

    def _answer(self, timeout_s: float) -> dict[str, Any]:
        out = self._proc.stdout
        assert out is not None
        readable, _, _ = select.select([out], [], [], timeout_s)
        line = out.readline() if readable else ""
        if not line:
            with suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)  # an import error: let the exit code arrive
        assert line, (
            f"the bundled handler gave no answer (exit code {self._proc.poll()}):\n"
            + self._stderr_path.read_text()[-4000:]
        )
        answer: dict[str, Any] = json.loads(line)
        return answer


@contextmanager
def bundled_lambda(
    bundle: Path, handler: str, env: dict[str, str], stderr_path: Path
) -> Iterator[BundledLambda]:
    """The driver on `bundle`'s `handler`, stopped when the block ends."""
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(
            [BASE_PYTHON, "-I", "-S", "-B", str(DRIVER), "lambda", str(bundle), handler, "60"],
            cwd=bundle,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        yield BundledLambda(proc, stderr_path)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the driver ends at the end of its input
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        stop_process_group(proc)  # type: ignore[arg-type]


def poller_env(moto: MotoEndpoint, resources: LocalResources, agentcore_url: str) -> dict[str, str]:
    """Only what the Lambda would hold: the function's environment (as the stack sets it),
    the region and credentials; the endpoints are the local stand-ins."""
    return {
        "PATH": os.environ.get("PATH", ""),
        **moto.env(),
        "JOBS_TABLE": resources.table,
        "RESULTS_BUCKET": resources.bucket,
        "TOPIC_ARN": resources.topic_arn,
        "AGENT_RUNTIME_ARN": RUNTIME_ARN,
        "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": agentcore_url,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POLLER_READ_TIMEOUT_S": "10",
        "POLLER_LEASE_S": "30",
        "POLLER_SAFETY_MARGIN_S": "5",
    }


def agent_command(bundle: Path) -> str:
    """AGENTCORE_AGENT_CMD for the agent from its bundle."""
    return shlex.join(
        [BASE_PYTHON, "-I", "-S", "-B", str(DRIVER), "agent", str(bundle), ENTRYPOINT]
    )


def mapped_files(runtime: RuntimeProcess) -> set[str]:
    """Every file mapped into the runtime's agent processes (their extension modules)."""
    found: set[str] = set()
    for process in runtime.agent_processes():
        found.update(m.path for m in process.memory_maps() if m.path.startswith("/"))
    return found


def record(moto: MotoEndpoint, resources: LocalResources, job_id: str) -> dict[str, Any]:
    item = moto.client("dynamodb").get_item(
        TableName=resources.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
    )["Item"]
    return dict(item)


def test_a_job_runs_end_to_end_on_the_shipped_bundles_alone(
    shipped: Shipped, moto: MotoEndpoint, resources: LocalResources, tmp_path: Path
) -> None:
    agent_env = {
        **moto.env(),
        **resources.env(),
        "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": "",
        # No Bedrock here: the `agent` kind runs Strands on its offline scripted model.
        "JOBAGENT_SCRIPTED_MODEL": "1",
    }
    with local_runtime(
        agent_cmd_line=agent_command(shipped.agent),
        env=agent_env,
        idle_timeout_s=120,
        stop_grace_s=5,
        extra_args=["--agent-cwd", str(shipped.agent), "--agent-log-dir", str(tmp_path / "agents")],
        log_path=tmp_path / "agentcore.log",
    ) as runtime:
        session_id = new_session_id()
        answer = runtime.invoke(
            session_id,
            {
                "action": "submit",
                "kind": "agent",
                "input": {"prompt": "Summarise the bundle.", "steps": 1},
            },
        )
        assert answer.get("status") == "RUNNING", answer
        job_id = str(answer["job_id"])
        mapped = mapped_files(runtime)
        venv = os.path.realpath(sys.prefix) + os.sep
        assert not [m for m in mapped if os.path.realpath(m).startswith(venv)], mapped
        assert any(m.startswith(str(shipped.agent) + os.sep) for m in mapped), mapped

        with bundled_lambda(
            shipped.poller,
            HANDLER,
            poller_env(moto, resources, runtime.url),
            tmp_path / "poller.log",
        ) as poller:
            assert poller.ready["sys_path"][0] == str(shipped.poller)
            assert not [p for p in poller.ready["sys_path"] if "site-packages" in p]
            deadline = time.monotonic() + GIVE_UP_S
            while "notified_at" not in record(moto, resources, job_id):
                assert time.monotonic() < deadline, record(moto, resources, job_id)
                answer = poller.invoke(scheduled_event(REGION))
                assert "error" not in answer and not answer["outside"], answer
                time.sleep(0.2)

        item = record(moto, resources, job_id)
        assert item["status"] == {"S": "SUCCEEDED"}, item
        assert "session_stopped_at" in item, item
        assert runtime.sessions()[session_id]["state"] == "Stopped"
        notifications = drain_inbox(moto.client("sqs"), resources.inbox_queue_url)
        assert [n["document"]["job_id"] for n in notifications] == [job_id], notifications
        assert notifications[0]["document"]["status"] == "SUCCEEDED"


def test_a_module_left_out_of_the_poller_bundle_fails_its_run(
    shipped: Shipped, moto: MotoEndpoint, resources: LocalResources, tmp_path: Path
) -> None:
    # The X-Ray SDK is imported by the poller's tracer alone: easy to leave out of a bundle.
    bundle = tmp_path / "poller"
    shutil.copytree(
        shipped.poller,
        bundle,
        ignore=shutil.ignore_patterns("aws_xray_sdk"),
        copy_function=os.link,
    )
    run = subprocess.run(
        [BASE_PYTHON, "-I", "-S", "-B", str(DRIVER), "lambda", str(bundle), HANDLER],
        cwd=bundle,
        env=poller_env(moto, resources, "http://127.0.0.1:9"),
        input=json.dumps(scheduled_event(REGION)) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0 and run.stdout == "", run
    assert "No module named 'aws_xray_sdk'" in run.stderr, run.stderr
