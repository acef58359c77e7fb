"""The env file is written and read by one quoting rule, the shell's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agentjobs.envfile import EnvFileError, format_env_lines, parse_env_text, read_env_file
from emulator.stack.state import read_state, write_state

AWKWARD = {
    "PLAIN": "abc",
    "SPACED": "two words",
    "QUOTES": 'it\'s "x"',
    "EQUALS": "x=y",
    "EMPTY": "",
    "HASH": "a#b",
}


def test_what_the_stack_writes_every_reader_reads_back(tmp_path: Path) -> None:
    path = write_state(tmp_path, AWKWARD)
    assert read_env_file(path) == AWKWARD
    state = read_state(tmp_path)
    assert state is not None and state.values == AWKWARD


def test_a_shell_reads_the_written_lines_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("\n".join(format_env_lines(AWKWARD)) + "\n")
    script = f"set -a; . {path}; set +a; " + "; ".join(
        f'printf "%s\\0" "${key}"' for key in AWKWARD
    )
    shell = subprocess.run(["sh", "-c", script], capture_output=True, check=True, text=True)
    assert shell.stdout.split("\0")[:-1] == list(AWKWARD.values())


def test_hand_written_lines_are_read_as_a_shell_would() -> None:
    text = "# c\n\nexport A=1\nB='two words'\nC=x=y\nD=\"q\" # note\nE=first second\n"
    assert parse_env_text(text) == {
        "A": "1",
        "B": "two words",
        "C": "x=y",
        "D": "q",
        "E": "first",
    }


def test_an_unbalanced_quote_names_its_line() -> None:
    with pytest.raises(EnvFileError, match=r"line 2 \(B\)"):
        parse_env_text("A=1\nB='open\n")
