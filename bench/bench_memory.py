"""Memory of an idle agent session: fresh, after a synthetic job, after an `agent` job.

Each row is one session of the real agent under the local runtime, measured once it is
idle again (Healthy, nothing in flight): RSS and USS (memory only this process holds) of
the agent process and any children it keeps. AgentCore bills a session's memory while it
idles, so this is what a spent session that nobody stops costs (docs/cost.md). The
poller's memory at 1,000 jobs in flight is in bench_poller_tick.py's second table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import print_table
from testbed.aws import moto_server
from testbed.local_runtime import AGENT_CMD, RuntimeProcess, local_runtime, new_session_id

SETTLE_S = 3.0

CASES: list[tuple[str, dict[str, Any] | None]] = [
    ("fresh session (answered one status call)", None),
    (
        "after a synthetic job (child process, 1 s of CPU)",
        {"kind": "synthetic", "input": {"seconds": 1, "cpu": True}},
    ),
    (
        "after an `agent` job (Strands loaded, scripted model)",
        {"kind": "agent", "input": {"prompt": "Summarise the plan", "steps": 2}},
    ),
]


def _session_memory(runtime: RuntimeProcess, job: dict[str, Any] | None) -> list[object]:
    session_id = new_session_id()
    before = {p.pid for p in runtime.agent_processes()}
    if job is None:
        runtime.invoke(session_id, {"action": "status"})
    else:
        job_id = runtime.invoke(session_id, {"action": "submit", **job})["job_id"]
        deadline = time.monotonic() + 120
        while (status := runtime.invoke(session_id, {"action": "status", "job_id": job_id}))[
            "status"
        ] == "RUNNING":
            assert time.monotonic() < deadline, "the job did not end"
            time.sleep(0.2)
        assert status["status"] == "SUCCEEDED", status
    time.sleep(SETTLE_S)
    assert runtime.sessions()[session_id]["ping"] == "Healthy"
    mine = [p for p in runtime.agent_processes() if p.pid not in before]
    rss = uss = 0
    for process in mine:
        try:
            info = process.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        uss += info.uss
    return [len(mine), f"{rss / 2**20:.0f}", f"{uss / 2**20:.0f}"]


def main() -> None:
    rows = []
    with moto_server() as moto:
        resources = moto.create_resources()
        env = {
            **moto.env(),
            **resources.env(),
            "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": "",
            "JOBAGENT_SCRIPTED_MODEL": "1",
        }
        with local_runtime(agent_cmd_line=AGENT_CMD, idle_timeout_s=300, env=env) as runtime:
            for name, job in CASES:
                rows.append([name, *_session_memory(runtime, job)])
    print_table(
        "Memory of one idle agent session (real agent under the local runtime)",
        ["session", "processes", "RSS MiB", "USS MiB"],
        rows,
    )


if __name__ == "__main__":
    main()
