"""Completion to notification: the fast path and the schedule alone, side by side, one run.

Two local stacks run at once on this machine, both with the deployed default schedule
period (60 s): one with LOCAL_FASTPATH=1, one with LOCAL_FASTPATH=0. Each gets the same
jobs, whose ends are spread evenly over one period, so that the schedule's latency is
sampled over its whole range. A job's latency is its `finished_at` (the agent's clock) to
the SNS `Timestamp` of its notification (moto's clock when the poller published; the same
machine's clock). The time this harness received the inbox message is shown too: it adds
the inbox's long-poll delivery.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentjobs.protocol import parse_time
from bench.common import percentile, print_table
from testbed.local_stack import LocalStack, Notified, local_stack

JOBS = int(os.environ.get("BENCH_LATENCY_JOBS", "50"))
JOBS_PER_SESSION = 5
PERIOD_S = float(os.environ.get("BENCH_SCHEDULE_S", "60"))
FIRST_END_S = 3.0


def _collect(stack: LocalStack, found: dict[str, Notified], done: threading.Event) -> None:
    """Read the inbox from before the first submit until `done`: a notification's receipt
    time is when it could first have been read."""
    sqs = stack.client("sqs")
    while not done.is_set():
        for note in stack.take_notifications(sqs, wait_s=1):
            found.setdefault(note.job_id, note)


def _submit_all(stack: LocalStack, started: float) -> set[str]:
    """JOBS synthetic jobs, JOBS_PER_SESSION to a session, ending evenly over one period."""
    client = stack.client("bedrock-agentcore", max_pool_connections=10)
    sessions = [f"latency-{uuid.uuid4()}" for _ in range(-(-JOBS // JOBS_PER_SESSION))]

    def submit(i: int) -> str:
        ends_at = started + FIRST_END_S + PERIOD_S * i / JOBS
        seconds = max(ends_at - time.monotonic(), 0.1)
        return stack.submit(
            client,
            sessions[i // JOBS_PER_SESSION],
            kind="synthetic",
            input={"seconds": seconds},
        )

    with ThreadPoolExecutor(max_workers=5) as pool:
        return set(pool.map(submit, range(JOBS)))


def _latencies(found: dict[str, Notified]) -> tuple[list[float], list[float]]:
    to_publish, to_harness = [], []
    for note in found.values():
        finished = parse_time(note.finished_at).timestamp()
        to_publish.append(parse_time(note.sns_timestamp).timestamp() - finished)
        to_harness.append(note.received_at - finished)
    return to_publish, to_harness


def _row(name: str, jobs: int, found: dict[str, Notified]) -> list[object]:
    publish, harness = _latencies(found)
    if not publish:
        return [name, jobs, 0, "-", "-", "-", "-", "-"]
    return [
        name,
        jobs,
        len(found),
        percentile(publish, 50),
        percentile(publish, 95),
        max(publish),
        percentile(harness, 50),
        percentile(harness, 95),
    ]


def main() -> None:
    results: dict[str, tuple[int, dict[str, Notified]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp,
        local_stack(Path(tmp) / "fast", poller_interval_s=PERIOD_S, fastpath=True) as fast,
        local_stack(Path(tmp) / "sched", poller_interval_s=PERIOD_S, fastpath=False) as sched,
    ):
        started = time.monotonic()
        stop_at = started + FIRST_END_S + 2 * PERIOD_S + 30

        def run(name: str, stack: LocalStack) -> None:
            found: dict[str, Notified] = {}
            done = threading.Event()
            reader = threading.Thread(target=_collect, args=(stack, found, done))
            reader.start()
            try:
                jobs = _submit_all(stack, started)
                while not jobs <= set(found) and time.monotonic() < stop_at:
                    time.sleep(0.2)
            finally:
                done.set()
                reader.join()
            results[name] = (len(jobs), {j: n for j, n in found.items() if j in jobs})

        threads = [
            threading.Thread(target=run, args=(name, stack))
            for name, stack in (
                ("fast path (LOCAL_FASTPATH=1)", fast),
                ("schedule alone (LOCAL_FASTPATH=0)", sched),
            )
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.monotonic() - started
    print_table(
        f"Completion to notification, {PERIOD_S:g} s schedule on both stacks, run side by side "
        f"({took:.0f} s; goal: fast path p95 < 2 s)",
        [
            "path",
            "jobs",
            "notified",
            "p50 s (finished_at to SNS Timestamp)",
            "p95 s",
            "max s",
            "p50 s (to harness receipt)",
            "p95 s (to harness receipt)",
        ],
        [_row(name, *results[name]) for name in sorted(results)],
    )


if __name__ == "__main__":
    main()
