"""`python -m emulator.stack up|down|status`: the local stack behind make local-up/local-down."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from emulator.stack import runner
from emulator.stack.settings import StackSettings, StackSettingsError


def main(argv: list[str] | None = None) -> int:
    """Run one of up, down or status with settings from the environment."""
    parser = argparse.ArgumentParser(
        prog="python -m emulator.stack",
        description="The local agentjobs stack: moto, the local AgentCore runtime and the "
        "poller's schedule, in the background, with logs and state under .local/.",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where env, pids and logs live (LOCAL_STATE_DIR, default .local/)",
    )
    args = parser.parse_args(argv)
    try:
        settings = StackSettings.from_env()
    except StackSettingsError as exc:
        print(f"local stack: {exc}", file=sys.stderr)
        return 2
    if args.state_dir is not None:
        settings = replace(settings, state_dir=args.state_dir.resolve())
    command = {"up": runner.up, "down": runner.down, "status": runner.status}[args.command]
    return command(settings)


if __name__ == "__main__":
    sys.exit(main())
