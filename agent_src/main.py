"""Start the job agent: serves /invocations and /ping on AGENT_BIND_HOST:PORT (0.0.0.0:8080)."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from collections.abc import Mapping

# Only definitions at import time: a spawned job process imports this module again, and
# /ping must answer within 2 s of start, so the server's imports wait for main().

BIND_HOST_ENV = "AGENT_BIND_HOST"
# AgentCore reaches the agent from outside its network namespace, so every interface is the
# default; the local runtime sets 127.0.0.1 for each session it starts.
DEFAULT_BIND_HOST = "0.0.0.0"  # noqa: S104 # nosec B104
DEFAULT_PORT = "8080"


class StartupError(ValueError):
    """A setting the agent cannot start with; the message names it and what is expected."""


def bind_address(environ: Mapping[str, str]) -> tuple[str, int]:
    """The interface and port to listen on, from AGENT_BIND_HOST and PORT."""
    host = environ.get(BIND_HOST_ENV) or DEFAULT_BIND_HOST
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise StartupError(
            f"{BIND_HOST_ENV}={host!r} is not an IP address: give 0.0.0.0 (every interface, "
            "as AgentCore needs) or 127.0.0.1 (this machine only)"
        ) from None
    text = environ.get("PORT") or DEFAULT_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise StartupError(f"PORT={text!r} is not a TCP port: give a number from 1 to 65535")
    return host, int(text)


def main() -> None:
    """Build the app from the environment and serve it until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        host, port = bind_address(os.environ)
    except StartupError as exc:
        print(f"agent: {exc}", file=sys.stderr)
        sys.exit(2)
    from jobagent.server import build_app  # noqa: PLC0415

    build_app().run(port=port, host=host, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
