"""Warm agent starts: sessions forked from a parent that has already imported the agent SDK
(`zygote.py`), where the agent command is this interpreter running a script.

A warm start is a faster cold start, nothing else: the same argv, directory, environment,
process group and output; the agent's own modules are imported by each session. Any other
agent command (another interpreter, `uv run`, flags before the script) starts cold, and so
does every session while the parent is not ready, or after it is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("emulator.agentcore")

ZYGOTE = Path(__file__).resolve().parent / "zygote.py"
_REPLY_TIMEOUT_S = 10.0


def warm_argv(agent_cmd: str, env: Mapping[str, str]) -> list[str] | None:
    """The script and its arguments, when `agent_cmd` is this interpreter running a script
    (`python agent.py ...`, found on the agent's PATH); None when it is anything else."""
    try:
        words = shlex.split(agent_cmd)
    except ValueError:
        return None
    if len(words) < 2 or words[1].startswith("-"):
        return None
    found = shutil.which(words[0], path=env.get("PATH"))
    if found is None:
        return None
    # A venv's python is a link to the base interpreter, which would not see the venv:
    # the same file is not enough, it must be this interpreter's own folder too.
    here = Path(sys.executable)
    there = Path(found)
    if there.absolute().parent != here.absolute().parent:
        return None
    with contextlib.suppress(OSError):
        if os.path.samefile(there, here):
            return words[1:]
    return None


class WarmProcess:
    """An agent process forked by the zygote, with the part of `subprocess.Popen` that the
    local runtime uses: `pid`, `returncode`, `poll()` and `wait()`."""

    def __init__(self, pid: int, starter: WarmStarter) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._starter = starter

    def poll(self) -> int | None:
        """The exit code once the process has ended (negative: the signal that ended it)."""
        if self.returncode is None and self._starter.gone and not _exists(self.pid):
            # The zygote is gone, so nobody reports this exit: the process is gone, how is unknown.
            self.returncode = 255
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait until the process ends; subprocess.TimeoutExpired after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"agent process {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        return code


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WarmStarter:
    """The zygote, seen from the local runtime: start it, ask it for agent processes, hear of
    their ends. Safe from any thread; a reader thread takes the zygote's replies."""

    def __init__(self, env: Mapping[str, str]) -> None:
        request_r, self._request_w = os.pipe()
        self._reply_r, reply_w = os.pipe()
        self.ready = threading.Event()
        self.settled = threading.Event()
        """Set once the zygote has said whether it is ready, or is gone."""
        self.gone = False
        self._closed = False
        self._lock = threading.Lock()
        self._replies: list[WarmProcess | str] = []
        self._abandoned = 0
        self._replied = threading.Condition(threading.Lock())
        self._live: dict[int, WarmProcess] = {}
        try:
            self._zygote = subprocess.Popen(  # noqa: S603 - this interpreter, our own file
                [sys.executable, str(ZYGOTE), str(request_r), str(reply_w)],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                pass_fds=(request_r, reply_w),
            )
        finally:
            os.close(request_r)
            os.close(reply_w)
        self._reader = threading.Thread(target=self._read, name="agentcore-zygote", daemon=True)
        self._reader.start()

    def start(
        self, argv: list[str], cwd: Path, env: Mapping[str, str], log_path: Path | None
    ) -> WarmProcess | None:
        """Fork an agent process running `argv` (a script and its arguments); None when the
        zygote is not ready or cannot, and the caller starts the agent cold."""
        if not cwd.is_dir():
            return None  # started cold, it fails as a cold start does, saying why
        request = {
            "argv": argv,
            "cwd": str(cwd),
            "env": dict(env),
            "log_path": None if log_path is None else str(log_path),
        }
        with self._lock:
            reply = self._ask(request) if self.ready.is_set() and not self._closed else None
        if isinstance(reply, str):
            log.warning("warm start refused: %s", reply)
            return None
        return reply

    def _ask(self, request: dict[str, Any]) -> WarmProcess | str | None:
        try:
            os.write(self._request_w, json.dumps(request).encode() + b"\n")
        except OSError:
            return None
        with self._replied:
            if self._replied.wait_for(lambda: self._replies or self.gone, _REPLY_TIMEOUT_S):
                return self._replies.pop(0) if self._replies else None
            # Replies would no longer match requests: no more warm starts, and the fork
            # given up on is killed when its reply comes.
            log.warning("the zygote did not answer in %.0f s: warm starts off", _REPLY_TIMEOUT_S)
            self.ready.clear()
            self._abandoned += 1
            return None

    def close(self) -> None:
        """End the zygote: it exits when its request pipe closes. Agents it forked are not its
        to stop: the local runtime stops them first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._request_w)
        try:
            self._zygote.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._zygote.kill()
            self._zygote.wait()

    def _read(self) -> None:
        with os.fdopen(self._reply_r, "rb") as replies:
            for line in replies:
                self._take(json.loads(line))
        with self._replied:
            self.gone = True
            self._replied.notify_all()
        self.ready.clear()
        self.settled.set()

    def _take(self, message: dict[str, Any]) -> None:
        if "ready" in message:
            if message["ready"]:
                log.info("warm starts ready: preloaded %s", ", ".join(message["preloaded"]))
                self.ready.set()
            else:
                log.warning("warm starts off: %s", message.get("why"))
            self.settled.set()
        elif "exit" in message:
            # In order: a pid's exit always comes before the reply that reuses it.
            process = self._live.pop(message["exit"], None)
            if process is not None:
                process.returncode = int(message["code"])
        elif "pid" in message:
            pid = message["pid"]
            reply: WarmProcess | str
            if pid is None:
                reply = str(message.get("why"))
            else:
                reply = self._live[pid] = WarmProcess(pid, self)
            with self._replied:
                if self._abandoned and isinstance(reply, WarmProcess):
                    self._abandoned -= 1
                    with contextlib.suppress(OSError):
                        os.kill(reply.pid, signal.SIGKILL)
                    return
                self._replies.append(reply)
                self._replied.notify_all()
