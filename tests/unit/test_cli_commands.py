"""The one `agentjobs` app holds every command, in the order its help lists them."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from agentjobs.cli.app import app

COMMANDS = [
    "submit",
    "status",
    "events",
    "list",
    "result",
    "wait",
    "cancel",
    "notifications",
    "doctor",
]


def _help(*command: str) -> str:
    done = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    return done.output


def test_the_help_lists_every_command_in_its_order() -> None:
    listed = re.findall(r"^[│|]\s+([a-z]+)\s{2,}", _help(), flags=re.MULTILINE)
    assert listed == COMMANDS


def test_wait_and_doctor_keep_their_exit_code_epilogs() -> None:
    assert "Exit codes: 0 the job SUCCEEDED" in _help("wait")
    assert "Exit codes: 0 every check passed" in _help("doctor")
