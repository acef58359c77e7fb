"""One agent process of a session: how it is started, where its output goes, how it is stopped."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from emulator.agentcore.exceptions import RuntimeClientError
from emulator.agentcore.settings import RuntimeSettings, agent_python_dir
from emulator.agentcore.warm_start import WarmProcess, WarmStarter, warm_argv

log = logging.getLogger("emulator.agentcore")

SHIM_DIR = Path(__file__).resolve().parent / "shim"
# Agents listen here, never on every interface: the local stack is for this machine only.
LOOPBACK_HOST = "127.0.0.1"
# A session id becomes its log file's name only when it is this plain; 200 characters plus
# ".log" stays inside the usual 255-byte limit on a file name.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_CLEANED_PREFIX = 100


def log_file_name(session_id: str) -> str:
    """The file, inside the log folder, of a session's agent output: the id itself when it
    is a plain name, else a cleaned, bounded form of it with a digest of the whole id, so
    that a caller's session id never chooses a path and two ids never share a file."""
    if _PLAIN_NAME.fullmatch(session_id):
        return f"{session_id}.log"
    cleaned = _UNSAFE_CHARS.sub("_", session_id)[:_CLEANED_PREFIX].lstrip("._") or "session"
    digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{cleaned}-{digest}.log"


@dataclass
class AgentProcess:
    """One agent process, leader of its own process group, serving on `port`."""

    handle: subprocess.Popen[bytes] | WarmProcess
    port: int
    log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the agent's HTTP server."""
        return f"http://{LOOPBACK_HOST}:{self.port}"

    def exited(self) -> bool:
        """Whether the agent's main process has ended."""
        return self.handle.poll() is not None

    async def terminate(self, grace_s: float) -> None:
        """SIGTERM the whole group, SIGKILL what is left after `grace_s`."""
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while not self.exited() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        # Also after a clean exit: children the agent started may still be in the group.
        self._signal_group(signal.SIGKILL)
        while not self.exited():
            await asyncio.sleep(0.01)
        if self.log_file is not None:
            self.log_file.close()

    def kill_now(self) -> None:
        """SIGKILL the group without waiting: the last resort when the event loop is gone."""
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.handle.wait(timeout=1)

    def _signal_group(self, signum: signal.Signals) -> None:
        try:
            os.killpg(self.handle.pid, signum)
        except ProcessLookupError:
            # A warm start's child has no group of its own until its first step (setsid).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.handle.pid, signum)
        except PermissionError:
            pass


def session_env(session_id: str, port: int) -> dict[str, str]:
    """The environment of a session's agent: this process's, and the session's own."""
    env = base_agent_env()
    env.update(
        PORT=str(port),
        # Read by our own agent; an SDK agent's wildcard bind is moved by the shim.
        AGENT_BIND_HOST=LOOPBACK_HOST,
        AGENTCORE_SESSION_PORT=str(port),
        AGENTCORE_SESSION_ID=session_id,
    )
    return env


def base_agent_env() -> dict[str, str]:
    """What every agent's environment holds before its session's variables: the shim first
    on PYTHONPATH, `python` meaning this interpreter, and this process's pid, by which the
    shim ends an agent whose runtime is gone (and tests find every process it started)."""
    env = dict(os.environ)
    env.update(
        AGENTCORE_EMULATOR_PID=str(os.getpid()),
        PYTHONPATH=os.pathsep.join(p for p in (str(SHIM_DIR), env.get("PYTHONPATH")) if p),
        PATH=os.pathsep.join(p for p in (str(agent_python_dir()), env.get("PATH")) if p),
    )
    return env


def spawn_agent(
    settings: RuntimeSettings, session_id: str, port: int, warm: WarmStarter | None = None
) -> AgentProcess:
    """Start the agent command for one session, serving on `port` of the loopback interface,
    leader of its own process group; its output goes to the session's log file, if any.
    Forked by `warm` when it can (see warm_start), else started cold."""
    env = session_env(session_id, port)
    log_path: Path | None = None
    if settings.agent_log_dir is not None:
        settings.agent_log_dir.mkdir(parents=True, exist_ok=True)
        log_path = settings.agent_log_dir / log_file_name(session_id)
        log.info("session %s logs to %s", session_id, log_path.name)
    argv = warm_argv(settings.agent_cmd, env) if warm is not None else None
    if warm is not None and argv is not None:
        forked = warm.start(argv, settings.agent_cwd, env, log_path)
        if forked is not None:
            return AgentProcess(handle=forked, port=port)
    log_file: IO[bytes] | None = None
    if log_path is not None:
        log_file = open(log_path, "ab")  # noqa: SIM115
    try:
        popen = subprocess.Popen(  # noqa: S603 - the operator's own agent command
            shlex.split(settings.agent_cmd),
            cwd=settings.agent_cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT if log_file else None,
            start_new_session=True,
        )
    except OSError as exc:
        if log_file is not None:
            log_file.close()
        raise RuntimeClientError(
            f"Runtime initialization failed: cannot run the agent command "
            f"{settings.agent_cmd!r} ({exc.strerror})."
        ) from exc
    return AgentProcess(handle=popen, port=port, log_file=log_file)
