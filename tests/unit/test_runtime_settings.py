"""The local runtime's settings and which agent commands start warm."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from emulator.agentcore.settings import settings_from
from emulator.agentcore.warm_start import warm_argv

HERE = str(Path(sys.executable).parent)


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("1", True), ("Off", False), ("no", False)]
)
def test_warm_start_reads_a_boolean(value: str, expected: bool) -> None:
    assert settings_from({}, {"AGENTCORE_WARM_START": value}).warm_start is expected
    assert settings_from({"warm_start": value}, {}).warm_start is expected


def test_warm_start_is_on_unless_turned_off() -> None:
    assert settings_from({}, {}).warm_start is True


def test_a_bad_warm_start_value_names_the_setting_and_what_it_expects() -> None:
    with pytest.raises(ValueError, match=r"AGENTCORE_WARM_START.*expected true or false"):
        settings_from({}, {"AGENTCORE_WARM_START": "sometimes"})


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python agent.py", ["agent.py"]),
        (f"{sys.executable} agent.py --flag 'a b'", ["agent.py", "--flag", "a b"]),
        ("python -u agent.py", None),  # interpreter flags: cold
        ("python -m my_agent", None),
        ("python", None),
        ("uv run agent.py", None),
        ("node agent.js", None),
        ("python 'unclosed", None),
    ],
)
def test_only_this_interpreter_running_a_script_starts_warm(
    command: str, expected: list[str] | None
) -> None:
    assert warm_argv(command, {"PATH": HERE}) == expected


def test_the_base_interpreter_of_a_venv_starts_cold() -> None:
    # The same file as the venv's python, but it would not see the venv's packages.
    base = Path(sys.executable).resolve()
    if base.parent == Path(sys.executable).parent:
        pytest.skip("this interpreter is not a venv's link")
    assert warm_argv(f"{base} agent.py", {"PATH": HERE}) is None
