"""Loaded into every agent process the local runtime starts: session port, loopback, no orphans."""

# The bedrock-agentcore SDK's `app.run()` listens on the fixed port 8080, as AgentCore
# requires. Locally many sessions run side by side, so each agent process gets its own
# port in AGENTCORE_SESSION_PORT, and a listening socket bound to 8080 is bound there
# instead. Patching `socket.bind` (not uvicorn) keeps this independent of the web
# framework, and leaves an agent that already honours PORT untouched.
#
# In AgentCore an agent must listen on every interface (the SDK does so inside Docker);
# on a developer's machine that would put every session on the network. So a TCP socket
# bound to a wildcard address on a fixed port is bound to loopback instead. Port 0 is left
# alone: a client may bind ("0.0.0.0", 0) as its source address, and loopback would
# strand its connections to the outside.

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

_FIXED_AGENT_PORT = 8080
# The addresses a wildcard bind names: the shim moves them to loopback, it never binds them.
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "::0", "0:0:0:0:0:0:0:0"})  # noqa: S104 # nosec B104
_LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


def _install_bind_move(session_port: int) -> None:
    original_bind = socket.socket.bind

    def bind(self: socket.socket, address: Any, /) -> None:
        if (
            self.family in _LOOPBACK
            and isinstance(address, tuple)
            and len(address) >= 2
            and isinstance(address[1], int)
        ):
            host, port = address[0], address[1]
            if port == _FIXED_AGENT_PORT:
                port = session_port
            if self.type == socket.SOCK_STREAM and port != 0 and host in _WILDCARDS:
                host = _LOOPBACK[self.family]
            address = (host, port, *address[2:])
        original_bind(self, address)

    socket.socket.bind = bind  # type: ignore[method-assign, assignment]


def _follow_emulator(emulator_pid: int) -> None:
    # Agents run in their own process groups, so a local runtime killed with SIGKILL
    # (no chance to stop them) would leave them running; they notice and end themselves.
    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(emulator_pid, 0)
            except ProcessLookupError:
                os.killpg(os.getpgrp(), signal.SIGTERM)
                return
            except PermissionError:
                continue

    threading.Thread(target=watch, name="agentcore-emulator-watch", daemon=True).start()


def _chain_next_sitecustomize() -> None:
    # Putting this directory first on PYTHONPATH shadows any other sitecustomize
    # (a distribution's or a virtualenv's); run that one too, as Python would have.
    here = os.path.dirname(os.path.abspath(__file__))
    others = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def follow_session(environ: Mapping[str, str]) -> None:
    """Act on a session's variables: its port, and the local runtime to end with. At import
    here, and again in an agent forked from the preloaded parent (`zygote.py`), which
    imported this module before it had a session."""
    port = environ.get("AGENTCORE_SESSION_PORT", "")
    if port.isdigit():
        _install_bind_move(int(port))
    emulator = environ.get("AGENTCORE_EMULATOR_PID", "")
    if emulator.isdigit():
        _follow_emulator(int(emulator))


# The preloaded parent of warm starts has no session yet: it calls this in each child.
if "AGENTCORE_SESSION_ID" in os.environ:
    follow_session(os.environ)
_chain_next_sitecustomize()
