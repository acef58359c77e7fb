"""Run the poller's Lambda handler in this process, tick after tick, until no job is in
flight; write what it took (ticks, seconds, peak RSS) as JSON to the file named by --out.

A process of its own, like a Lambda container: its memory is the poller's alone. The
environment names the resources and endpoints, as the Lambda's does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "poller_lambda")]

from emulator.stack.schedule import LambdaContext, scheduled_event  # noqa: E402


def _peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that over
    from the parent across fork and exec, so a child reports its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--max-ticks", type=int, default=20)
    args = parser.parse_args()
    import handler  # noqa: PLC0415 - imported here, so that its import is measured apart

    imported_mib = _peak_rss_mib()
    started = time.monotonic()
    busy_until = started
    ticks = []
    for _ in range(args.max_ticks):
        summary = handler.handler(scheduled_event(args.region), LambdaContext(600, args.region))
        metrics = summary["metrics"]
        if not metrics.get("JobsInFlight"):
            break
        busy_until = time.monotonic()
        ticks.append(summary)
    args.out.write_text(
        json.dumps(
            {
                "ticks": len(ticks),
                "seconds": busy_until - started,
                "in_flight_first_tick": ticks[0]["metrics"].get("JobsInFlight", 0) if ticks else 0,
                "poll_errors": sum(t["metrics"].get("PollErrors", 0) for t in ticks),
                "peak_rss_mib": _peak_rss_mib(),
                "rss_after_import_mib": imported_mib,
            }
        )
    )


if __name__ == "__main__":
    main()
