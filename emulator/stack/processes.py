"""Start background processes in their own process groups, wait for them, stop them by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import psutil

from emulator.stack.settings import REPO_ROOT
from emulator.stack.state import RecordedProcess


class StartError(RuntimeError):
    """A process did not come up; the message says which and where its log is."""


def spawn(cmd: list[str], *, log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `cmd` detached: its own session and process group, output to `log_path`, no
    stdin, so that it never holds the caller's terminal or pipes."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own commands, built from fixed parts
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    *,
    what: str,
    log_path: Path,
    timeout_s: float,
) -> None:
    """Poll `ready` until it is true; StartError if `proc` exits or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if proc.poll() is not None:
            raise StartError(f"{what} exited with code {proc.returncode}: see {log_path}")
        if time.monotonic() > deadline:
            raise StartError(f"{what} did not answer within {timeout_s:g} s: see {log_path}")
        time.sleep(0.05)


def answers_http(url: str) -> Callable[[], bool]:
    """A readiness check: `url` answers with any HTTP status."""

    def check() -> bool:
        # A developer's HTTP proxy must not capture calls to 127.0.0.1.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    return check


STARTED_TOLERANCE_S = 1.0
"""Creation times are derived from the boot time, which the kernel may report a second apart."""


def record(name: str, proc: subprocess.Popen[bytes]) -> RecordedProcess:
    """What to record of a process just started: its pid, command line and creation time."""
    try:
        started: float | None = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        started = None
    args = proc.args
    cmdline = tuple(str(a) for a in args) if isinstance(args, list | tuple) else (str(args),)
    return RecordedProcess(name, proc.pid, cmdline, started)


def is_ours(recorded: RecordedProcess) -> bool:
    """True when the recorded pid is alive, leads its own process group, runs the command
    line the stack started it with and was created when the stack recorded: a recycled pid
    belongs to someone else and is left alone, and so is a pid whose record cannot say."""
    if recorded.cmdline is None or recorded.started is None:
        return False
    try:
        proc = psutil.Process(recorded.pid)
        return (
            proc.status() != psutil.STATUS_ZOMBIE
            and os.getpgid(recorded.pid) == recorded.pid
            and tuple(proc.cmdline()) == recorded.cmdline
            and abs(proc.create_time() - recorded.started) <= STARTED_TOLERANCE_S
        )
    except (psutil.Error, ProcessLookupError, PermissionError):
        return False


def is_running(pid: int) -> bool:
    """True while some process (ours or not) has this pid."""
    try:
        return is_alive(psutil.Process(pid))
    except psutil.Error:
        return False


def stop_group(pid: int, grace_s: float) -> None:
    """SIGTERM the process group led by `pid` and every descendant (the runtime's agents run
    in groups of their own), then SIGKILL whatever is left after `grace_s`."""
    try:
        leader = psutil.Process(pid)
        family = [leader, *leader.children(recursive=True)]
    except psutil.Error:
        family = []
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    alive = _wait_gone(family, grace_s)
    for proc in alive:
        with suppress(psutil.Error):
            proc.terminate()
    alive = _wait_gone(alive, 1.0)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for proc in alive:
        with suppress(psutil.Error):
            proc.kill()
    _wait_gone(alive, 2.0)


def is_alive(proc: psutil.Process) -> bool:
    """True while the process runs. A zombie is dead: once its parent (the `up` command)
    has exited, only init reaps it, and init here may take seconds."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    alive = [p for p in procs if is_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if is_alive(p)]
    return alive
