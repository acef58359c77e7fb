"""The local AgentCore runtime: added round-trip latency, cold start, idle session memory."""

from __future__ import annotations

import json
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psutil  # noqa: E402

from bench.common import percentile, print_table  # noqa: E402
from testbed.local_runtime import (  # noqa: E402
    RUNTIME_ARN,
    local_runtime,
    new_session_id,
)

ROUNDS = 1000
COLD_STARTS = 10
IDLE_SESSIONS = 10
SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"


def runtime_path(runtime_url: str) -> str:
    """The runtime's URL for our ARN, percent-encoded as boto3 sends it."""
    return f"{runtime_url}/runtimes/{urllib.parse.quote(RUNTIME_ARN, safe='')}"


def timed_posts(
    client: httpx.Client, url: str, headers: dict[str, str], rounds: int
) -> list[float]:
    """Milliseconds per POST of a small JSON payload, the answer read in full."""
    payload = json.dumps({"prompt": "ping"}).encode()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        answer = client.post(url, content=payload, headers=headers)
        answer.read()
        samples.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, answer.text
    return samples


def overhead(url: str, runtime_pid: int) -> list[list[object]]:
    """Invoke through the runtime and straight to the agent, interleaved in blocks; the
    runtime's own CPU per call too, a figure that a busy machine does not inflate much."""
    session_id = new_session_id()
    quoted = f"{runtime_path(url)}/invocations"
    headers = {SESSION_HEADER: session_id, "Content-Type": "application/json"}
    with httpx.Client(trust_env=False, timeout=30) as client:
        client.post(quoted, content=b"{}", headers=headers).read()  # starts the session
        agent_url = client.get(f"{url}/sessions").json()["sessions"][0]["agentUrl"]
        direct_url = f"{agent_url}/invocations"
        timed_posts(client, direct_url, headers, 100)  # warm-up
        timed_posts(client, quoted, headers, 100)
        via, direct = [], []
        runtime_process = psutil.Process(runtime_pid)
        runtime_cpu_s = 0.0
        for _ in range(ROUNDS // 100):
            direct += timed_posts(client, direct_url, headers, 100)
            before = sum(runtime_process.cpu_times()[:2])
            via += timed_posts(client, quoted, headers, 100)
            runtime_cpu_s += sum(runtime_process.cpu_times()[:2]) - before
    rows: list[list[object]] = []
    for name, samples in (("agent direct", direct), ("through local runtime", via)):
        rows.append([name, len(samples), percentile(samples, 50), percentile(samples, 99)])
    rows.append(
        [
            "added by the runtime",
            "",
            percentile(via, 50) - percentile(direct, 50),
            percentile(via, 99) - percentile(direct, 99),
        ]
    )
    rows.append(["runtime CPU per call (mean)", len(via), runtime_cpu_s * 1000 / len(via), ""])
    return rows


def cold_starts(runtime_url: str) -> list[list[object]]:
    """First invoke of a new session (process start to answer) against a warm invoke."""
    cold, warm = [], []
    url = runtime_path(runtime_url)
    with httpx.Client(trust_env=False, timeout=60) as client:
        for _ in range(COLD_STARTS):
            headers = {SESSION_HEADER: new_session_id()}
            start = time.perf_counter()
            client.post(f"{url}/invocations", content=b"{}", headers=headers).read()
            cold.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            client.post(f"{url}/invocations", content=b"{}", headers=headers).read()
            warm.append((time.perf_counter() - start) * 1000)
            client.post(f"{url}/stopruntimesession", content=b"{}", headers=headers).read()
    return [
        ["cold (new session)", len(cold), statistics.median(cold), max(cold)],
        ["warm (same session)", len(warm), statistics.median(warm), max(warm)],
    ]


def idle_memory(runtime_pid: int, runtime_url: str) -> list[list[object]]:
    """RSS of each idle session's agent processes, and what the runtime itself grows by."""
    url = runtime_path(runtime_url)
    runtime_process = psutil.Process(runtime_pid)
    before = runtime_process.memory_info().rss
    with httpx.Client(trust_env=False, timeout=60) as client:
        for _ in range(IDLE_SESSIONS):
            headers = {SESSION_HEADER: new_session_id()}
            client.post(f"{url}/invocations", content=b"{}", headers=headers).read()
    time.sleep(1.0)
    agents = runtime_process.children(recursive=True)
    per_session = [
        sum(p.memory_info().rss for p in [agent, *agent.children(recursive=True)]) / 2**20
        for agent in agents
        if agent.ppid() == runtime_pid
    ]
    grown = (runtime_process.memory_info().rss - before) / 2**20 / IDLE_SESSIONS
    return [
        [
            "agent process RSS per idle session (MiB)",
            len(per_session),
            statistics.median(per_session),
        ],
        ["runtime RSS growth per session (MiB)", IDLE_SESSIONS, grown],
    ]


def main() -> None:
    with local_runtime("echo_agent", ping_interval_s=2, startup_timeout_s=60) as runtime:
        print_table(
            f"InvokeAgentRuntime round trip, echo agent, {ROUNDS} calls each, keep-alive, ms",
            ["path", "calls", "p50", "p99"],
            overhead(runtime.url, runtime.pid),
        )
        print_table(
            "Session start: first invoke of a new session against a warm one, ms",
            ["invoke", "sessions", "median", "max"],
            cold_starts(runtime.url),
        )
        print_table(
            "Memory of idle sessions (bedrock-agentcore SDK echo agent)",
            ["measure", "sessions", "value"],
            idle_memory(runtime.pid, runtime.url),
        )


if __name__ == "__main__":
    main()
