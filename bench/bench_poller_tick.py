"""Poller tick cost: 200 in flight with 0 vs 100,000 finished jobs, and collecting 1,000 jobs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path[:0] = [
    str(Path(__file__).resolve().parents[1]),
    str(Path(__file__).resolve().parents[1] / "poller_lambda"),
]

from agentjobs.metrics import Metric  # noqa: E402
from agentjobs.protocol import JobStatus, format_time  # noqa: E402
from agentjobs.record import ATTENTION_PENDING, JobRecord, to_item  # noqa: E402
from bench.common import print_table  # noqa: E402
from testbed.aws import moto_server  # noqa: E402
from testbed.poller import (  # noqa: E402
    BAD_AGENT_CMD,
    PollerRig,
    poller_rig,
    poller_settings,
)

IN_FLIGHT = int(os.environ.get("BENCH_IN_FLIGHT", "200"))
HISTORY = int(os.environ.get("BENCH_HISTORY", "100000"))
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "50"))
JOBS_PER_SESSION = int(os.environ.get("BENCH_JOBS_PER_SESSION", "20"))
TICKS = 5
CONCURRENCY = int(os.environ.get("BENCH_POLLER_CONCURRENCY", "16"))


def _record(status: JobStatus, session_id: str, now: datetime) -> JobRecord:
    return JobRecord(
        job_id=uuid.uuid4().hex,
        session_id=session_id,
        kind="synthetic",
        status=status,
        submitted_at=format_time(now),
        updated_at=format_time(now),
        max_runtime_s=3600,
        deadline_at=format_time(now + timedelta(hours=1)),
        finished_at=format_time(now) if status != JobStatus.RUNNING else None,
        notified_at=format_time(now) if status != JobStatus.RUNNING else None,
        session_stopped_at=format_time(now) if status != JobStatus.RUNNING else None,
        result={"ok": True} if status == JobStatus.SUCCEEDED else None,
    )


def _write(rig: PollerRig, items: list[dict[str, Any]]) -> None:
    ddb = rig.moto.client("dynamodb")
    batches = [items[i : i + 25] for i in range(0, len(items), 25)]

    def put(batch: list[dict[str, Any]]) -> None:
        pending = {rig.resources.table: [{"PutRequest": {"Item": item}} for item in batch]}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(put, batches))


def _tick(rig: PollerRig) -> tuple[float, float, int]:
    """One tick: its time, its index read's time, and the jobs it polled."""
    report = rig.tick(budget_s=600)
    return (
        report.counts[Metric.TICK_DURATION_MS],
        report.counts[Metric.INDEX_READ_MS],
        report.counts[Metric.JOBS_POLLED],
    )


def _index_items_read(rig: PollerRig) -> int:
    """Items the attention-index query reads (what DynamoDB bills)."""
    return int(
        rig.moto.client("dynamodb").query(
            TableName=rig.resources.table,
            IndexName="attention-index",
            KeyConditionExpression="attention = :p",
            ExpressionAttributeValues={":p": {"S": ATTENTION_PENDING}},
            Select="COUNT",
        )["ScannedCount"]
    )


def history_ratio() -> list[list[object]]:
    """Tick time with IN_FLIGHT running jobs (one session of a stand-in agent that always
    answers RUNNING) in two tables on one moto server: one with no history, one with
    HISTORY finished jobs. Ticks alternate between the two, so that both see the same
    machine load; the medians are compared."""
    rows: list[list[object]] = []
    with (
        moto_server() as moto,
        poller_rig(moto, moto.create_resources(), agent_cmd=BAD_AGENT_CMD) as empty,
    ):
        resources = moto.create_resources()
        full = PollerRig(moto, resources, empty.runtime, poller_settings(resources))
        now = datetime.now(UTC)
        for rig in (empty, full):
            session_id = f"running-{uuid.uuid4()}"
            running = []
            for _ in range(IN_FLIGHT):
                item = to_item(_record(JobStatus.RUNNING, session_id, now))
                item["attention"] = {"S": ATTENTION_PENDING}
                running.append(item)
            _write(rig, running)
        started = time.monotonic()
        _write(
            full,
            [to_item(_record(JobStatus.SUCCEEDED, "done", now)) for _ in range(HISTORY)],
        )
        print(f"(history written in {time.monotonic() - started:.0f} s)")
        samples: dict[str, list[tuple[float, float, int]]] = {"empty": [], "full": []}
        for _ in range(TICKS):
            samples["empty"].append(_tick(empty))
            samples["full"].append(_tick(full))
        medians = {}
        for name, rig, history in (("empty", empty, 0), ("full", full, HISTORY)):
            tick = statistics.median(t for t, _, _ in samples[name])
            read = statistics.median(r for _, r, _ in samples[name])
            medians[name] = (tick, tick - read)
            row: list[object] = [
                IN_FLIGHT,
                history,
                samples[name][-1][2],
                _index_items_read(rig),
                f"{tick:.0f}",
                f"{read:.0f}",
                f"{tick - read:.0f}",
            ]
            if name == "empty":
                row += ["-", "-"]
            else:
                row += [
                    f"{tick / medians['empty'][0]:.2f}",
                    f"{(tick - read) / medians['empty'][1]:.2f}",
                ]
            rows.append(row)
    return rows


def thousand_jobs() -> list[list[object]]:
    """SESSIONS x JOBS_PER_SESSION cheap synthetic jobs on the real agent: time to collect them."""
    import psutil  # noqa: PLC0415

    with (
        moto_server() as moto,
        poller_rig(moto, moto.create_resources(), concurrency=CONCURRENCY) as rig,
    ):
        sessions = [f"bench-{uuid.uuid4()}" for _ in range(SESSIONS)]

        def submit_all(session_id: str) -> list[str]:
            return [
                rig.submit(session_id, kind="synthetic", input={"seconds": 0.2, "cpu": False})
                for _ in range(JOBS_PER_SESSION)
            ]

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            jobs = [j for batch in pool.map(submit_all, sessions) for j in batch]
        submit_s = time.monotonic() - started
        rss = [p.memory_info().rss for p in rig.runtime.agent_processes()]
        per_session_mib = sum(rss) / max(len(sessions), 1) / 2**20
        time.sleep(1.0)  # every job has finished in its agent
        collected = _collect_in_poller_process(rig)
        ticks, collect_s = collected["ticks"], collected["seconds"]
        notified = len(rig.inbox())
        stopped = sum(1 for s in rig.sessions().values() if s["state"] == "Stopped")
        del psutil
    return [
        [
            len(jobs),
            SESSIONS,
            f"{submit_s:.1f}",
            ticks,
            f"{collect_s:.1f}",
            f"{len(jobs) / collect_s:.0f}",
            notified,
            stopped,
            collected["poll_errors"],
            f"{collected['rss_after_import_mib']:.0f}",
            f"{collected['peak_rss_mib']:.0f}",
            f"{per_session_mib:.0f}",
        ]
    ]


def _collect_in_poller_process(rig: PollerRig) -> dict[str, Any]:
    """Run the Lambda handler in a process of its own (as one Lambda container) until every
    job is collected; its report: ticks, seconds, poll errors and its peak memory."""
    env = {
        **os.environ,
        **rig.moto.env(),
        **rig.resources.env(),
        **rig.settings.environment,
        "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": rig.runtime.url,
        "POLLER_CONCURRENCY": str(CONCURRENCY),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "collected.json"
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("run_poller.py")), "--out", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
            timeout=900,
        )
        report: dict[str, Any] = json.loads(out.read_text())
    return report


def main() -> None:
    print_table(
        "Poller tick with jobs in flight vs finished history (moto; goal ratio <= 1.2)",
        [
            "in flight",
            "finished in table",
            "polled per tick",
            "index items read",
            f"tick ms (median of {TICKS}, alternating)",
            "index read ms in tick (moto scans)",
            "tick ms without index read",
            "tick ratio",
            "ratio without index read",
        ],
        history_ratio(),
    )
    print_table(
        "Collecting 1,000 finished jobs from the local runtime, one poller process "
        "(goal: within 60 s)",
        [
            "jobs",
            "sessions",
            "submit s",
            "ticks",
            "collect s",
            "jobs/s",
            "notifications",
            "sessions stopped",
            "poll errors",
            "poller MiB after import",
            "poller peak MiB",
            "agent MiB per session",
        ],
        thousand_jobs(),
    )


if __name__ == "__main__":
    main()
