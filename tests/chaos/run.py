"""`make chaos`: the full fault-injection run, printing its figures (exit 1 if an invariant broke).

python -m tests.chaos.run --jobs 300 [--seed N] [--off kind,kind] [--max-sessions N] [--keep-logs]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from testbed.aws import moto_server
from tests.chaos.harness import FAULT_KINDS, ChaosConfig, machine_cores, run_chaos


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the chaos suite against a fresh moto server, print the figures."""
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--pollers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=6, help="session workers per world")
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=2 * machine_cores(),
        help="live sessions at once across both worlds (default: 2 per core)",
    )
    parser.add_argument("--no-hostile", action="store_true", help="no hostile requests")
    parser.add_argument(
        "--off", default="", help=f"fault kinds to switch off, comma separated: {FAULT_KINDS}"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs directory")
    args = parser.parse_args(argv)
    off = {k for k in args.off.split(",") if k}
    unknown = off - set(FAULT_KINDS)
    if unknown:
        parser.error(f"unknown fault kinds: {', '.join(sorted(unknown))}")
    if args.max_sessions < 1 or args.workers < 1 or args.jobs < 1:
        parser.error("--jobs, --workers and --max-sessions must be at least 1")
    log_dir = Path(tempfile.mkdtemp(prefix="agentjobs-chaos-"))
    config = replace(
        ChaosConfig(),
        jobs=args.jobs,
        seed=args.seed,
        pollers=args.pollers,
        session_workers=args.workers,
        max_sessions=args.max_sessions,
        hostile=not args.no_hostile,
        faults=frozenset(FAULT_KINDS) - off,
        log_dir=log_dir,
    )
    print(
        f"chaos: {args.jobs} jobs, at most {args.max_sessions} live sessions, logs in {log_dir}",
        flush=True,
    )
    # Interrupted or terminated, the run still stops what it started (runtimes, agents, moto).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with moto_server() as moto:
        report = run_chaos(config, moto)
    print(report.text(), flush=True)
    if not args.keep_logs and report.ok:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
