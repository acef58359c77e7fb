"""`make demo` next to a developer's own local stack: it never stops what it did not start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from agentjobs.envfile import read_env_file
from testbed.local_stack import local_stack
from testbed.processes import REPO, all_gone
from tests.support.cli import hermetic_env


def run_demo(state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = hermetic_env(LOCAL_STATE_DIR=str(state_dir), DEMO_FAST="1")
    return subprocess.run(
        [sys.executable, "scripts/demo.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_partly_running_stack_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    # No fast path: its consumer would be one more process to start, and no job runs here.
    with local_stack(tmp_path / "stack", poller_interval_s=2, fastpath=False) as stack:
        values = read_env_file(stack.state_dir / "env")
        schedule = psutil.Process(int(values["POLLER_SCHEDULE_PID"]))
        os.killpg(schedule.pid, 9)
        assert all_gone([schedule])
        others = [psutil.Process(int(values[k])) for k in ("LOCAL_RUNTIME_PID", "MOTO_PID")]

        demo = run_demo(stack.state_dir)

        assert demo.returncode == 1, demo.stdout + demo.stderr
        assert (
            f"a local stack is partly running in {stack.state_dir}: stop it with "
            "`make local-down`, then run `make demo` again"
        ) in demo.stderr
        assert "Traceback" not in demo.stderr
        assert "Stopping the local stack" not in demo.stdout
        assert all(p.is_running() for p in others)
        assert (stack.state_dir / "env").exists()
