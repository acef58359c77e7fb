"""`python -m emulator.agentcore`: run the local AgentCore Runtime data plane."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from emulator.agentcore.server import serve
from emulator.agentcore.settings import ENV_NAMES, settings_from

DEFAULT_PORT = 8900


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Flags; each one unset falls back to its environment variable, then the default."""
    parser = argparse.ArgumentParser(
        prog="python -m emulator.agentcore",
        description="A local Amazon Bedrock AgentCore Runtime data plane for boto3.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("AGENTCORE_PORT", DEFAULT_PORT)),
        help=f"port (AGENTCORE_PORT, default {DEFAULT_PORT})",
    )
    flags = {
        "agent_cmd": "command that starts one agent process (default: python agent_src/main.py)",
        "agent_cwd": "working directory of agent processes (default: the repository root)",
        "idle_timeout_s": "stop a Healthy session idle this long (default 900)",
        "max_lifetime_s": "stop any session this old (default 28800)",
        "busy_policy": "accept or reject invocations of HealthyBusy sessions (default accept)",
        "ping_interval_s": "seconds between /ping polls of each session (default 2)",
        "ping_failures": "failed /ping polls in a row that end a session (default 3)",
        "startup_timeout_s": "seconds an agent has to answer /ping after start (default 60)",
        "stop_grace_s": "seconds between SIGTERM and SIGKILL when stopping (default 5)",
        "max_sessions": "running sessions allowed at once (default 1000)",
        "agent_log_dir": "write each session's agent output to DIR/<session-id>.log",
        "warm_start": "fork python-script agents from a parent with the SDK loaded (default true)",
    }
    for name, help_text in flags.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=None,
            help=f"{help_text} [{ENV_NAMES[name]}]",
        )
    parser.add_argument("--log-level", default="INFO", help="log level (default INFO)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Parse flags and the environment, then serve until interrupted."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        settings = settings_from(vars(args), os.environ)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(settings, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
