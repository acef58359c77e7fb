"""/ping latency of the real agent idle and while a synthetic job burns CPU; submit latency."""

from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, print_table
from testbed.agent import agent_env, job_processes, running_agent
from testbed.aws import moto_server

PINGS = 1000
SUBMITS = 300


def _ping_latencies_ms(conn: http.client.HTTPConnection, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        conn.request("GET", "/ping")
        body = conn.getresponse().read()
        samples.append((time.perf_counter() - start) * 1000)
        assert b"Healthy" in body
    return samples


def _invoke(conn: http.client.HTTPConnection, payload: dict[str, object]) -> dict[str, object]:
    conn.request(
        "POST",
        "/invocations",
        body=json.dumps(payload),
        headers={
            "Content-Type": "application/json",
            "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": "bench-session-" + "0" * 32,
        },
    )
    answer: dict[str, object] = json.loads(conn.getresponse().read())
    return answer


def main() -> None:
    """Start moto and the agent, measure, print the tables."""
    with moto_server() as moto:
        resources = moto.create_resources()
        started = time.perf_counter()
        with running_agent(agent_env(moto, resources)) as agent:
            ready_ms = (time.perf_counter() - started) * 1000
            host, port = agent.url.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            time.sleep(2)  # let the agent's background warm-up (boto3 clients) finish first
            _ping_latencies_ms(conn, 50)  # warm the connection and the server's code paths
            idle = _ping_latencies_ms(conn, PINGS)

            burner = _invoke(
                conn,
                {"action": "submit", "kind": "synthetic", "input": {"seconds": 600, "cpu": True}},
            )
            job_processes(agent)
            time.sleep(0.5)  # let the child get past its imports and into its loop
            busy = _ping_latencies_ms(conn, PINGS)
            _invoke(conn, {"action": "cancel", "job_id": burner["job_id"]})

            submits = []
            for _ in range(SUBMITS):
                start = time.perf_counter()
                answer = _invoke(
                    conn,
                    {"action": "submit", "kind": "synthetic", "input": {"seconds": 0.01}},
                )
                submits.append((time.perf_counter() - start) * 1000)
                assert answer.get("status") == "RUNNING", answer
            conn.close()

    idle_p99, busy_p99 = percentile(idle, 99), percentile(busy, 99)
    print_table(
        "Agent /ping under load (ms, sequential calls on one keep-alive connection)",
        ["measure", "calls", "p50", "p99", "max"],
        [
            ["/ping idle", len(idle), percentile(idle, 50), idle_p99, max(idle)],
            ["/ping, CPU job in a child", len(busy), percentile(busy, 50), busy_p99, max(busy)],
            [
                "submit (DynamoDB on moto)",
                len(submits),
                percentile(submits, 50),
                percentile(submits, 99),
                max(submits),
            ],
        ],
    )
    print_table(
        "Agent /ping: busy against idle",
        ["figure", "value", "goal"],
        [
            ["busy p99 / idle p99", busy_p99 / idle_p99, "< 3"],
            ["busy p99 (ms)", busy_p99, "< 5"],
            ["submit p99 (ms)", percentile(submits, 99), "< 50"],
            ["start to first /ping (ms)", ready_ms, "< 2000"],
        ],
    )


if __name__ == "__main__":
    main()
