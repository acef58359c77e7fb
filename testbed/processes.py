"""Start real server processes on free ports for tests, and always stop them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def wait_http(
    url: str, timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until `url` answers any HTTP status; fail early if `proc` dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


def stop_process_group(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM the process's group, then SIGKILL what is left after `grace_s`."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=grace_s)


@contextmanager
def running(
    cmd: list[str],
    *,
    ready_url: str,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    timeout_s: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd` in its own process group until the block ends; wait for `ready_url` first."""
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_http(ready_url, timeout_s, proc)
        yield proc
    finally:
        stop_process_group(proc)
        if log_path:
            log.close()  # type: ignore[union-attr]


def all_gone(processes: list[psutil.Process], timeout_s: float = 15) -> bool:
    """Whether every one of `processes` has exited (a zombie counts as exited) within
    `timeout_s`."""
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    for process in alive:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True
