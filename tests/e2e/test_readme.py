"""The README's commands, run as a newcomer would type them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from emulator.stack.state import PID_KEYS
from testbed.processes import REPO, all_gone
from tests.support.cli import hermetic_env

README = REPO / "README.md"
DEFAULT_ENV_FILE = REPO / ".local" / "env"
_FOREGROUND_JOB = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp('bash', ['bash', '-c', sys.argv[1]])"
)
"""`python -c _FOREGROUND_JOB COMMAND`: bash runs COMMAND with SIGINT's default disposition."""


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
    # Run from `make test`, make's own level would make the inner make say which directory
    # it enters: the README's commands are run as a user types them, at the top level.
    env.pop("MAKELEVEL", None)
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


def readme_demo_command() -> str:
    """The demo's command as the README's first block writes it."""
    return bash_blocks()[0].splitlines()[0].split("#")[0].strip()


def demo_checks(stdout: str) -> dict[str, str]:
    """The claims `make demo` verified and printed as `[check] NAME: TEXT` lines."""
    return dict(re.findall(r"^\[check\] ([\w-]+): (.*)$", stdout, re.M))


def progress_values(stdout: str) -> set[float]:
    """The distinct percentages `agentjobs wait` printed (one line per change, when piped)."""
    return {float(p) for p in re.findall(r"^(?:RUNNING|SUCCEEDED) +([\d.]+)%", stdout, re.M)}


def stack_processes_gone(checks: dict[str, str], ended_at: float) -> bool:
    """Whether every process the demo listed before its teardown has exited (a pid taken
    since by a process started after the demo ended is someone else's)."""
    pids = [int(pid) for pid in re.findall(r"\d+", checks["processes"].split("pids", 1)[1])]
    assert pids, checks["processes"]
    ours = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.create_time() <= ended_at:
                ours.append(process)
        except psutil.NoSuchProcess:
            continue
    return all_gone(ours)


@pytest.mark.skipif(default_stack_running(), reason="a local stack of yours runs in .local/")
def test_make_demo_shows_every_step_of_a_long_job_and_leaves_nothing_running() -> None:
    demo = run_bash(f"DEMO_FAST=1 {readme_demo_command()}")
    ended_at = time.time()
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    checks = demo_checks(demo.stdout)
    job_id = re.fullmatch(r"job (\w+) in session \S+", checks["submitted"])
    assert job_id is not None, checks["submitted"]
    assert "HealthyBusy" in checks["healthybusy"]
    assert len(progress_values(demo.stdout)) >= 3, demo.stdout
    assert checks["notification"] == f"1 notification(s) of job {job_id[1]} in the inbox"
    assert "stopped" in checks
    assert "live=False" in checks["same-result"]
    resumed = re.fullmatch(
        r"job \w+ resumed in session (\S+) from its checkpoint at ([\d.]+) s of [\d.]+ s, "
        r"succeeded on attempt 2, 1 notification\(s\)",
        checks["resume"],
    )
    assert resumed is not None, checks["resume"]
    assert float(resumed[2]) > 0
    assert checks["teardown"].startswith("all ")
    assert stack_processes_gone(checks, ended_at)
    assert not default_stack_running()


@pytest.mark.skipif(default_stack_running(), reason="a local stack of yours runs in .local/")
def test_ctrl_c_during_make_demo_stops_everything_it_started() -> None:
    env = hermetic_env(
        PATH=f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        MAKEFLAGS="-o .venv/.installed",
        DEMO_FAST="1",
    )
    env.pop("LOCAL_STATE_DIR", None)
    # Its own process group, as a terminal's foreground job: Ctrl-C signals all of it. And
    # SIGINT at its default disposition, as in that job: a suite started in the background
    # of a non-interactive shell (or under a profiler) inherits SIGINT ignored, and a
    # program that inherits it ignored keeps ignoring it, as POSIX intends, Python and the
    # demo among them (seen here: the demo ran to its end). Reset before bash is exec'd, in
    # a process of its own: a preexec_fn is not safe in this threaded process.
    demo = subprocess.Popen(
        [sys.executable, "-c", _FOREGROUND_JOB, readme_demo_command()],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert demo.stdout is not None
        seen = []
        for line in demo.stdout:
            seen.append(line)
            if line.startswith("$ agentjobs wait "):
                os.killpg(demo.pid, signal.SIGINT)
                break
        output = "".join(seen) + demo.stdout.read()
        demo.wait(timeout=60)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    ended_at = time.time()
    checks = demo_checks(output)
    assert "teardown" in checks, output
    assert "Interrupted: stopping everything the demo started." in output, output
    assert "SUCCEEDED" not in output
    assert checks["teardown"].startswith("all "), output
    assert stack_processes_gone(checks, ended_at)
    assert not default_stack_running()
    assert demo.returncode != 0


def test_make_demo_refuses_a_malformed_demo_fast_and_starts_nothing() -> None:
    demo = run_bash("DEMO_FAST=yes make demo")
    assert demo.returncode != 0
    assert "DEMO_FAST must be 0 or 1 (1: the short form); got 'yes'" in demo.stderr
    assert "Traceback" not in demo.stderr
    assert demo.stdout == ""
    assert not default_stack_running()


@pytest.mark.skipif(default_stack_running(), reason="a local stack of yours runs in .local/")
def test_boto3_block_then_local_stack_block_run_as_written_on_one_stack() -> None:
    # One stack for both blocks (a stack's start and stop cost seconds and CPU): the boto3
    # block needs a stack up, so the test starts one with the local-stack block's own first
    # command; the local-stack block then runs whole, as written: its `make local-up` finds
    # the stack running and says so (as its comment promises), its job succeeds, and its
    # `make local-down` stops the stack.
    boto3_block = block_with("invoke_agent_runtime(")
    local_block = block_with("make local-up")
    try:
        started = run_bash("make local-up")
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        ran = run_bash(boto3_block)
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        assert ran.stdout.split() == ["True", "SUCCEEDED", "2.0", "live=False"]

        ran = run_bash(local_block)
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        assert "already running" in ran.stdout
        assert "SUCCEEDED" in ran.stdout
        assert not default_stack_running(), "the block's `make local-down` left the stack up"
    finally:
        run_bash("make local-down")
    assert not default_stack_running()
