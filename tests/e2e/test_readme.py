"""The README's commands, run as a newcomer would type them."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from emulator.stack.state import PID_KEYS
from testbed.processes import REPO
from tests.support.cli import hermetic_env

README = REPO / "README.md"
DEFAULT_ENV_FILE = REPO / ".local" / "env"


def bash_blocks() -> list[str]:
    """The README's ```bash blocks, in order."""
    return re.findall(r"^```bash\n(.*?)^```$", README.read_text(), re.S | re.M)


def block_with(command: str) -> str:
    """The one bash block that runs `command`."""
    matches = [block for block in bash_blocks() if command in block]
    assert len(matches) == 1, f"expected one README block with {command!r}"
    return matches[0]


def run_bash(script: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    """Run a README block with bash -e from the repository root, the venv first on PATH,
    make told not to reinstall the venv mid-test, and no AWS settings of the caller's."""
    env = hermetic_env(
        PATH=f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        MAKEFLAGS="-o .venv/.installed",
    )
    env.pop("LOCAL_STATE_DIR", None)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def default_stack_running() -> bool:
    """Whether a developer's own local stack runs in this checkout's .local/ right now."""
    if not DEFAULT_ENV_FILE.exists():
        return False
    values = dict(
        line.split("=", 1) for line in DEFAULT_ENV_FILE.read_text().splitlines() if "=" in line
    )
    pids = [values.get(key, "") for key in PID_KEYS.values()]
    return any(pid.isdigit() and Path(f"/proc/{pid}").exists() for pid in pids)


def test_the_first_block_shows_make_demo_and_make_test() -> None:
    first = bash_blocks()[0]
    commands = [line.split("#")[0].strip() for line in first.splitlines()]
    assert commands == ["make demo", "make test"]


@pytest.mark.parametrize(
    "target", ["demo", "test", "synth", "deploy", "local-up", "local-down", "bench", "chaos"]
)
def test_every_make_target_the_readme_names_exists(target: str) -> None:
    assert f"make {target}" in README.read_text()
    dry_run = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", target],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert dry_run.returncode == 0, dry_run.stderr


@pytest.mark.skipif(default_stack_running(), reason="a local stack of yours runs in .local/")
def test_make_demo_runs_a_report_to_success_and_tears_down() -> None:
    demo = run_bash("make demo")
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "SUCCEEDED" in demo.stdout
    assert "Stopping the local stack" in demo.stdout
    assert not default_stack_running()


@pytest.mark.skipif(default_stack_running(), reason="a local stack of yours runs in .local/")
def test_local_stack_block_runs_as_written() -> None:
    block = block_with("make local-up")
    try:
        ran = run_bash(block)
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        assert "SUCCEEDED" in ran.stdout
    finally:
        run_bash("make local-down")
    assert not default_stack_running()


@pytest.mark.skipif(default_stack_running(), reason="a local stack of yours runs in .local/")
def test_boto3_block_gets_the_result_by_re_invoking_the_stopped_session() -> None:
    block = block_with("invoke_agent_runtime(")
    try:
        started = run_bash("make local-up")
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        ran = run_bash(block)
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        assert ran.stdout.split() == ["True", "SUCCEEDED", "2.0", "live=False"]
    finally:
        run_bash("make local-down")
    assert not default_stack_running()
