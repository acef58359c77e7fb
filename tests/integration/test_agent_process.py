"""The agent process's life: a restart (recycled session), a failing job table, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import psutil

from agentjobs.store import ResultStore
from emulator.resources import LocalResources
from testbed.agent import agent_env, job_processes, running_agent
from testbed.aws import MotoEndpoint
from testbed.processes import REPO, VENV_BIN


def test_restarted_agent_answers_from_the_outcome_it_stored_in_s3(
    moto: MotoEndpoint, resources: LocalResources
) -> None:
    env = agent_env(moto, resources)
    with running_agent(env) as agent:
        job = agent.submit("synthetic", {"seconds": 0.1, "result_bytes": 300})
        finished = agent.wait_for_end(job["job_id"])
        session = agent.session_id
    with running_agent(env) as recycled:
        answer = recycled.invoke({"action": "result", "job_id": job["job_id"]}, session)
        assert answer == {**finished, "live": False}
        assert recycled.invoke({"action": "status"}, session)["status"] == "SUCCEEDED"
    outcome = ResultStore(moto.client("s3"), resources.bucket).get_outcome(job["job_id"])
    assert outcome == finished
    assert outcome["status"] == "SUCCEEDED"


def test_submit_fails_clearly_and_starts_nothing_when_the_job_table_fails(
    moto: MotoEndpoint, resources: LocalResources
) -> None:
    broken = replace(resources, table="no-such-table")
    with running_agent(agent_env(moto, broken)) as agent:
        answer = agent.submit("synthetic", {"seconds": 5, "cpu": True})
        assert set(answer) == {"error"}
        assert answer["error"]["code"] == "JOB_STORE_UNAVAILABLE"
        assert "nothing was started" in answer["error"]["message"]
        assert agent.ping() == "Healthy"
        unreadable = agent.invoke({"action": "status"})
        assert unreadable["error"]["code"] == "JOB_STORE_UNAVAILABLE"
        assert psutil.Process(agent.proc.pid).children() == []
    listed = moto.client("s3").list_objects_v2(Bucket=resources.bucket)
    assert listed.get("KeyCount", 0) == 0


def test_a_failing_results_bucket_never_keeps_the_session_busy(
    moto: MotoEndpoint, resources: LocalResources
) -> None:
    with running_agent(agent_env(moto, resources)) as agent:
        # Long enough for the bucket to go (three calls to moto) before either job ends.
        small = agent.submit("synthetic", {"seconds": 1})
        large = agent.submit("synthetic", {"seconds": 1, "result_bytes": 100_000})
        # Gone once the jobs run (a resumable job's submit keeps its input there first).
        s3 = moto.client("s3")
        for listed in s3.list_objects_v2(Bucket=resources.bucket).get("Contents", []):
            s3.delete_object(Bucket=resources.bucket, Key=listed["Key"])
        s3.delete_bucket(Bucket=resources.bucket)
        # The outcome cannot be stored, yet every job ends and the task completes.
        assert agent.wait_for_end(small["job_id"])["status"] == "SUCCEEDED"
        answer = agent.wait_for_end(large["job_id"])
        assert answer["status"] == "FAILED"
        assert answer["error"]["code"] == "RESULT_MISSING"
        agent.wait_for_ping("Healthy")


def test_submit_fails_clearly_when_no_job_table_is_configured(
    moto: MotoEndpoint, resources: LocalResources
) -> None:
    env = agent_env(moto, resources)
    env["JOBS_TABLE"] = ""
    with running_agent(env) as agent:
        answer = agent.submit("synthetic", {"seconds": 0.1})
        assert answer["error"]["code"] == "JOB_STORE_UNAVAILABLE"
        assert "JOBS_TABLE" in answer["error"]["message"]


def test_agent_kind_without_a_model_is_refused(
    moto: MotoEndpoint, resources: LocalResources
) -> None:
    env = agent_env(moto, resources)
    del env["JOBAGENT_SCRIPTED_MODEL"]
    with running_agent(env) as agent:
        answer = agent.invoke({"prompt": "hello"})
        assert answer["error"]["code"] == "KIND_UNAVAILABLE"
        assert "MODEL_ID" in answer["error"]["message"]


def test_sigterm_leaves_no_orphan_while_a_cpu_job_runs(
    moto: MotoEndpoint, resources: LocalResources, tmp_path: Path
) -> None:
    log = tmp_path / "agent.log"
    with running_agent(agent_env(moto, resources), log_path=log) as agent:
        agent.submit("synthetic", {"seconds": 120, "cpu": True})
        server = psutil.Process(agent.proc.pid)
        job_processes(agent)
        descendants = server.children(recursive=True)
        # Only the server gets the signal (not its process group): its own shutdown must
        # stop the children.
        os.kill(agent.proc.pid, signal.SIGTERM)
        agent.proc.wait(timeout=30)
        _, alive = psutil.wait_procs(descendants, timeout=10)
        still_running = [p for p in alive if _is_running(p)]
        assert still_running == []
    # The app's lifespan shutdown did it (not the children's own orphan check).
    assert "agent stopped with 1 job(s) unfinished" in log.read_text()


def test_building_the_app_does_not_load_strands() -> None:
    # /ping must answer within 2 s of start: the heavy imports wait for the first job.
    probe = (
        "import sys; sys.path.insert(0, 'agent_src');"
        "import main; main.app.check();"
        "print('strands' in sys.modules)"
    )
    out = subprocess.run(
        [str(VENV_BIN / "python"), "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "JOBS_TABLE": "t", "RESULTS_BUCKET": "b"},
    )
    assert out.stdout.strip() == "False"


def _is_running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
