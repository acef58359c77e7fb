"""The project's own agent (agent_src/main.py) under the local runtime, AWS on moto, via boto3."""

from __future__ import annotations

import json
import time
from typing import Any

from emulator.resources import LocalResources
from testbed.aws import MotoEndpoint
from testbed.local_runtime import RUNTIME_ARN, RuntimeProcess, local_runtime, new_session_id

GIVE_UP_S = 60.0


def call(runtime: RuntimeProcess, session_id: str, request: dict[str, Any]) -> dict[str, Any]:
    return runtime.invoke(session_id, request)


def test_a_job_runs_to_the_end_in_a_session_of_the_real_agent(
    moto: MotoEndpoint, resources: LocalResources
) -> None:
    # The default command, as `make local-up` runs it: `python` is the emulator's venv python.
    with local_runtime(
        agent_cmd_line="python agent_src/main.py",
        env={**moto.env(), **resources.env(), "JOBAGENT_SCRIPTED_MODEL": "1"},
        stop_grace_s=5,
    ) as runtime:
        session_id = new_session_id()
        job = call(
            runtime,
            session_id,
            {
                "action": "submit",
                "kind": "synthetic",
                "input": {"seconds": 1, "cpu": False, "fail": None, "result_bytes": 64},
            },
        )
        assert job["status"] == "RUNNING"
        assert job["session_id"] == session_id
        deadline = time.monotonic() + GIVE_UP_S
        answer = job
        while answer["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = call(runtime, session_id, {"action": "result", "job_id": job["job_id"]})
        assert answer["status"] == "SUCCEEDED", answer
        record = moto.client("dynamodb").get_item(
            TableName=resources.table, Key={"job_id": {"S": job["job_id"]}}
        )
        assert record["Item"]["session_id"]["S"] == session_id
        runtime.client().stop_runtime_session(
            agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id
        )
        assert runtime.sessions()[session_id]["state"] == "Stopped"
        assert json.dumps(answer)
