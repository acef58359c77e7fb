"""`local-down` signals a recorded pid only when it still runs the command the stack started."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from testbed.processes import REPO, stop_process_group
from tests.support.cli import hermetic_env

MOTO_CMD = [sys.executable, "-m", "emulator.moto_server", "-H", "127.0.0.1", "-p", "45999"]


@pytest.fixture
def bystander() -> Iterator[psutil.Process]:
    """Someone else's process: alive, leader of its own group, older than any record below."""
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True, stdin=subprocess.DEVNULL)
    process = psutil.Process(proc.pid)
    try:
        # Until it has exec'ed, the child still shows this test's command line.
        deadline = time.monotonic() + 30
        while process.cmdline() != ["sleep", "300"] and time.monotonic() < deadline:
            time.sleep(0.01)
        yield process
    finally:
        stop_process_group(proc)


def local_down(state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.stack", "down", "--state-dir", str(state_dir)],
        cwd=REPO,
        env=hermetic_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def record(state_dir: Path, **values: str) -> None:
    state_dir.mkdir(exist_ok=True)
    lines = [f"{key}={shlex.quote(value)}" for key, value in values.items()]
    (state_dir / "env").write_text("\n".join(lines) + "\n")


def alive(process: psutil.Process) -> bool:
    return process.is_running() and process.status() != psutil.STATUS_ZOMBIE


def test_a_pid_recorded_without_its_command_line_is_left_alone(
    tmp_path: Path, bystander: psutil.Process
) -> None:
    # The record of an older stack: a pid and a time, which a recycled pid can satisfy.
    record(tmp_path, MOTO_PID=str(bystander.pid), LOCAL_STACK_STARTED_AT=f"{9e9:.3f}")
    done = local_down(tmp_path)
    assert done.returncode == 0, done.stderr
    assert alive(bystander)
    assert f"pid {bystander.pid}" in done.stdout
    assert not (tmp_path / "env").exists()


def test_a_pid_now_running_another_command_is_left_alone(
    tmp_path: Path, bystander: psutil.Process
) -> None:
    record(
        tmp_path,
        MOTO_PID=str(bystander.pid),
        MOTO_CMDLINE=shlex.join(MOTO_CMD),
        MOTO_STARTED=f"{bystander.create_time():.3f}",
        LOCAL_STACK_STARTED_AT=f"{9e9:.3f}",
    )
    done = local_down(tmp_path)
    assert done.returncode == 0, done.stderr
    assert alive(bystander)
    assert f"Left pid {bystander.pid} alone" in done.stdout


def test_a_pid_running_the_same_command_but_started_later_is_left_alone(
    tmp_path: Path, bystander: psutil.Process
) -> None:
    record(
        tmp_path,
        MOTO_PID=str(bystander.pid),
        MOTO_CMDLINE=shlex.join(bystander.cmdline()),
        MOTO_STARTED=f"{bystander.create_time() - 100:.3f}",
        LOCAL_STACK_STARTED_AT=f"{9e9:.3f}",
    )
    done = local_down(tmp_path)
    assert done.returncode == 0, done.stderr
    assert alive(bystander)


def test_a_pid_matching_its_record_is_stopped(tmp_path: Path, bystander: psutil.Process) -> None:
    record(
        tmp_path,
        MOTO_PID=str(bystander.pid),
        MOTO_CMDLINE=shlex.join(bystander.cmdline()),
        MOTO_STARTED=f"{bystander.create_time():.3f}",
        LOCAL_STACK_STARTED_AT=f"{9e9:.3f}",
    )
    done = local_down(tmp_path)
    assert done.returncode == 0, done.stderr
    assert not alive(bystander)
    assert f"Stopped the moto server (pid {bystander.pid})" in done.stdout
