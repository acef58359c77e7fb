"""Where a job agent listens: AGENT_BIND_HOST and PORT, checked before the server starts."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

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
