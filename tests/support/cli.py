"""Run the `agentjobs` console script as a subprocess, in a hermetic AWS environment."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentjobs.cli import main
from testbed.processes import VENV_BIN

AGENTJOBS = VENV_BIN / "agentjobs"

# Variables that would point the CLI at a real account or at another stack.
_AWS_PREFIXES = (
    "AWS_",
    "JOBS_TABLE",
    "EVENTS_TABLE",
    "RESULTS_BUCKET",
    "TOPIC_ARN",
    "AGENT_RUNTIME_ARN",
)
_AWS_NAMES = ("INBOX_QUEUE_URL", "AGENTJOBS_STACK", "LOCAL_RUNTIME_URL")


def hermetic_env(**extra: str) -> dict[str, str]:
    """The current environment without AWS settings or credentials (no config files, no
    instance metadata), plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_AWS_PREFIXES) and k not in _AWS_NAMES
    }
    env.update(
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        AWS_EC2_METADATA_DISABLED="true",
        COLUMNS="200",
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class CliRun:
    """How one `agentjobs` invocation ended."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON (for --json runs)."""
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"agentjobs {' '.join(self.args)} -> {self.code}\n{self.stdout}\n{self.stderr}"


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
    timeout_s: float = 90,
) -> CliRun:
    """Run `agentjobs ARGS...` and capture its exit code and output."""
    proc = subprocess.run(
        [str(AGENTJOBS), *args],
        # Not the repository root by default: a developer's running .local/env would win.
        cwd=cwd or Path(tempfile.gettempdir()),
        env=env if env is not None else hermetic_env(),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return CliRun(tuple(args), proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(run: CliRun, *fragments: str) -> None:
    """A failure as the CLI promises: non-zero exit, one line on stderr naming what is wrong
    (each fragment appears in it), no traceback."""
    assert run.code != 0, str(run)
    assert "Traceback" not in run.stderr + run.stdout, str(run)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, str(run)
    assert lines[0].startswith("agentjobs: error: "), str(run)
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


class InProcessCli:
    """Run the console script's entry point (`agentjobs.cli.main`) in this process: the same
    code as the subprocess, without paying the interpreter start and imports per call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self._monkeypatch = monkeypatch
        self._capsys = capsys

    def __call__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdin: str | None = None,
    ) -> CliRun:
        patch = self._monkeypatch
        wanted = env if env is not None else hermetic_env()
        for name in list(os.environ):
            if name not in wanted:
                patch.delenv(name)
        for name, value in wanted.items():
            patch.setenv(name, value)
        patch.chdir(cwd or Path(tempfile.gettempdir()))
        patch.setattr(sys, "argv", ["agentjobs", *args])
        patch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        self._capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = self._capsys.readouterr()
        return CliRun(tuple(args), code, captured.out, captured.err)


def list_every_page(cli: InProcessCli, env_file: Path, limit: int, pages: int = 4) -> list[str]:
    """The job ids `agentjobs list --json` shows, following its next tokens for at most
    `pages` pages of `limit`; every page must succeed."""
    seen: list[str] = []
    token: list[str] = []
    for _ in range(pages):
        run = cli("list", "--limit", str(limit), "--json", "--local-env", str(env_file), *token)
        assert run.code == 0, str(run)
        page = run.json()
        seen += [job["job_id"] for job in page["jobs"]]
        if page["next_token"] is None:
            break
        token = ["--next-token", page["next_token"]]
    return seen
