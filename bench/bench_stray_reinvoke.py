"""What a caller's stray re-invocation of a spent session costs, in session-seconds.

A job runs on the local stack and is collected: the poller notifies it and stops its
session. Then a caller invokes the same session again for the result. AgentCore starts a
fresh microVM for it; the agent answers from the job table and S3 and then has nothing to
do, so the session lives until the idle timeout stops it, unless the caller stops it. The
local runtime runs with a short idle timeout (BENCH_STRAY_IDLE_S, default 20 s) to keep
the run short; the figure at AWS's default 900 s is the measured one with the idle part
replaced. Each stray runs in its own session, all at once.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import print_table
from testbed.local_stack import LocalStack, local_stack

IDLE_S = float(os.environ.get("BENCH_STRAY_IDLE_S", "20"))
STRAYS = int(os.environ.get("BENCH_STRAY_SESSIONS", "3"))
AWS_DEFAULT_IDLE_S = 900.0
MEMORY_GB_HOUR = 0.00945
"""AgentCore memory price in us-east-1 (docs/cost.md), billed while a session idles."""


def _wait_stopped(stack: LocalStack, session_id: str, timeout_s: float) -> float:
    """Poll the local runtime until the session is stopped; monotonic time it was seen so."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stack.session_states().get(session_id) == "Stopped":
            return time.monotonic()
        time.sleep(0.25)
    raise TimeoutError(f"session {session_id} was not stopped within {timeout_s:g} s")


def _collected_session(stack: LocalStack) -> str:
    """A session whose job the poller has notified and whose session it has stopped."""
    client = stack.client("bedrock-agentcore")
    session_id = f"stray-{uuid.uuid4()}"
    stack.submit(client, session_id, kind="synthetic", input={"seconds": 0.2})
    _wait_stopped(stack, session_id, 60)
    return session_id


def _stray(stack: LocalStack, session_id: str, caller_stops: bool) -> tuple[float, float]:
    """One stray `result`: (seconds until it was answered, session-seconds it cost)."""
    client = stack.client("bedrock-agentcore")
    started = time.monotonic()
    answer = stack.invoke(session_id, {"action": "result"}, client)
    answered = time.monotonic()
    if answer.get("live") is not False:
        raise RuntimeError(f"expected an answer from the stores, got {answer}")
    if caller_stops:
        client.stop_runtime_session(
            agentRuntimeArn=stack.values()["AGENT_RUNTIME_ARN"], runtimeSessionId=session_id
        )
    stopped = _wait_stopped(stack, session_id, IDLE_S + 60)
    return answered - started, stopped - started


def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-stray-") as state_dir,
        local_stack(
            Path(state_dir),
            poller_interval_s=60,
            fastpath=True,
            AGENTCORE_IDLE_TIMEOUT_S=f"{IDLE_S:g}",
            # A stray's session-seconds include the agent's start, which AgentCore pays cold.
            AGENTCORE_WARM_START="false",
        ) as stack,
        ThreadPoolExecutor(max_workers=STRAYS) as pool,
    ):
        rows = []
        for caller_stops in (False, True):
            sessions = list(pool.map(lambda _: _collected_session(stack), range(STRAYS)))
            figures = list(pool.map(_stray, [stack] * STRAYS, sessions, [caller_stops] * STRAYS))
            answer_s = statistics.median(f[0] for f in figures)
            session_s = statistics.median(f[1] for f in figures)
            at_default = session_s if caller_stops else session_s - IDLE_S + AWS_DEFAULT_IDLE_S
            rows.append(
                [
                    "caller stops the session after reading" if caller_stops else "left to idle",
                    answer_s,
                    session_s,
                    at_default,
                    at_default * 0.128 * MEMORY_GB_HOUR / 3600,
                    at_default * 1.0 * MEMORY_GB_HOUR / 3600,
                ]
            )
    print_table(
        f"A stray re-invocation of a spent session ({STRAYS} sessions each, medians; "
        f"local idle timeout {IDLE_S:g} s)",
        [
            "after the answer",
            "answered in (s)",
            "session-seconds measured",
            "session-seconds at 900 s idle",
            "memory $ at 128 MB",
            "memory $ at 1 GB",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
