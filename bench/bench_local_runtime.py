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
    listed_sessions,
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


def session_start(client: httpx.Client, runtime_url: str) -> tuple[float, float, float]:
    """One new session: its first invoke (process start to answer) in ms, the agent
    process's CPU by then in ms, and a second invoke of the same session in ms."""
    url = runtime_path(runtime_url)
    session_id = new_session_id()
    headers = {SESSION_HEADER: session_id}
    start = time.perf_counter()
    client.post(f"{url}/invocations", content=b"{}", headers=headers).read()
    first = (time.perf_counter() - start) * 1000
    pid = listed_sessions(runtime_url)[session_id]["pid"]
    cpu = psutil.Process(pid).cpu_times()
    start = time.perf_counter()
    client.post(f"{url}/invocations", content=b"{}", headers=headers).read()
    again = (time.perf_counter() - start) * 1000
    client.post(f"{url}/stopruntimesession", content=b"{}", headers=headers).read()
    return first, (cpu.user + cpu.system) * 1000, again


def session_starts(warm_url: str, cold_url: str) -> list[list[object]]:
    """New sessions on a runtime with warm starts and on one without, taken in turn."""
    taken: dict[str, list[tuple[float, float, float]]] = {"warm": [], "cold": []}
    with httpx.Client(trust_env=False, timeout=60) as client:
        for _ in range(COLD_STARTS):
            taken["warm"].append(session_start(client, warm_url))
            taken["cold"].append(session_start(client, cold_url))
    rows: list[list[object]] = []
    for kind, label in (("cold", "cold start (--warm-start false)"), ("warm", "warm start")):
        first = [t[0] for t in taken[kind]]
        cpu = [t[1] for t in taken[kind]]
        rows.append(
            [
                f"new session, {label}",
                len(first),
                statistics.median(first),
                max(first),
                statistics.median(cpu),
            ]
        )
    again = [t[2] for t in taken["warm"] + taken["cold"]]
    rows.append(
        ["same session, second invoke", len(again), statistics.median(again), max(again), "-"]
    )
    cold_cpu = statistics.median(t[1] for t in taken["cold"])
    warm_cpu = statistics.median(t[1] for t in taken["warm"])
    cold_ms = statistics.median(t[0] for t in taken["cold"])
    warm_ms = statistics.median(t[0] for t in taken["warm"])
    rows.append(["warm / cold", "-", warm_ms / cold_ms, "-", warm_cpu / cold_cpu])
    return rows


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
    listed = listed_sessions(runtime_url).values()
    agents = [psutil.Process(s["pid"]) for s in listed if s["state"] != "Stopped"]
    per_session = [
        sum(p.memory_info().rss for p in [agent, *agent.children(recursive=True)]) / 2**20
        for agent in agents
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
    cold_runtime = local_runtime(
        "echo_agent", ping_interval_s=2, startup_timeout_s=60, extra_args=["--warm-start", "false"]
    )
    with local_runtime("echo_agent", ping_interval_s=2, startup_timeout_s=60) as runtime:
        print_table(
            f"InvokeAgentRuntime round trip, echo agent, {ROUNDS} calls each, keep-alive, ms",
            ["path", "calls", "p50", "p99"],
            overhead(runtime.url, runtime.pid),
        )
        with cold_runtime as cold:
            print_table(
                "Session start: a new session's first invoke, warm and cold starts in turn",
                ["invoke", "sessions", "median ms", "max ms", "agent CPU ms"],
                session_starts(runtime.url, cold.url),
            )
        print_table(
            "Memory of idle sessions (bedrock-agentcore SDK echo agent)",
            ["measure", "sessions", "value"],
            idle_memory(runtime.pid, runtime.url),
        )


if __name__ == "__main__":
    main()
