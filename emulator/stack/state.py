"""The local stack's state file, `.local/env`: addresses, resources and the recorded pids."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from agentjobs.envfile import format_env_lines, read_env_file

PID_KEYS = {
    "poller schedule": "POLLER_SCHEDULE_PID",
    "AgentCore runtime": "LOCAL_RUNTIME_PID",
    "moto server": "MOTO_PID",
}
"""Process name -> its pid's key, in the order they are stopped (the reverse of starting)."""

STARTED_AT_KEY = "LOCAL_STACK_STARTED_AT"
"""Epoch seconds when the stack was recorded (for people; pids are checked by fingerprint)."""


def cmdline_key(pid_key: str) -> str:
    """The key of the command line a recorded process was started with."""
    return pid_key.removesuffix("_PID") + "_CMDLINE"


def started_key(pid_key: str) -> str:
    """The key of a recorded process's creation time (epoch seconds, as the kernel says)."""
    return pid_key.removesuffix("_PID") + "_STARTED"


@dataclass(frozen=True)
class RecordedProcess:
    """A process the stack started, as it recorded it: enough to know a recycled pid."""

    name: str
    pid: int
    cmdline: tuple[str, ...] | None
    """The command it was started with; None in a record that does not say."""
    started: float | None
    """Its creation time; None in a record that does not say."""

    def fingerprint(self) -> dict[str, str]:
        """The env file lines that record this process."""
        key = PID_KEYS[self.name]
        values = {key: str(self.pid)}
        if self.cmdline is not None:
            values[cmdline_key(key)] = shlex.join(self.cmdline)
        if self.started is not None:
            values[started_key(key)] = f"{self.started:.3f}"
        return values


@dataclass(frozen=True)
class StackState:
    """What `.local/env` says about a local stack."""

    values: dict[str, str]

    @property
    def pids(self) -> dict[str, int]:
        """Process name -> recorded pid, for the processes the file names."""
        found = {}
        for name, key in PID_KEYS.items():
            text = self.values.get(key, "")
            if text.isdigit():
                found[name] = int(text)
        return found

    @property
    def processes(self) -> dict[str, RecordedProcess]:
        """Process name -> what the file records of it, for the processes the file names."""
        found = {}
        for name, pid in self.pids.items():
            key = PID_KEYS[name]
            try:
                cmdline = tuple(shlex.split(self.values[cmdline_key(key)])) or None
            except (KeyError, ValueError):
                cmdline = None
            try:
                started: float | None = float(self.values[started_key(key)])
            except (KeyError, ValueError):
                started = None
            found[name] = RecordedProcess(name, pid, cmdline, started)
        return found


def env_path(state_dir: Path) -> Path:
    """Where the env file of a state directory lives."""
    return state_dir / "env"


def read_state(state_dir: Path) -> StackState | None:
    """The recorded stack, or None when there is no env file."""
    path = env_path(state_dir)
    if not path.is_file():
        return None
    values = read_env_file(path)
    return StackState(values)


def write_state(state_dir: Path, values: dict[str, str]) -> Path:
    """Write the env file atomically: one KEY=value a line, quoted only where a shell needs it."""
    path = env_path(state_dir)
    lines = [
        "# The local agentjobs stack (make local-up). Source it: set -a; . .local/env; set +a",
        *format_env_lines(values),
    ]
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def remove_state(state_dir: Path) -> None:
    """Forget the recorded stack (its logs stay)."""
    env_path(state_dir).unlink(missing_ok=True)
