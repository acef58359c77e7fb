"""The local stack's settings, state file and the poller's Lambda context."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emulator.stack.processes import is_ours
from emulator.stack.schedule import LambdaContext, scheduled_event
from emulator.stack.settings import StackSettings, StackSettingsError
from emulator.stack.state import RecordedProcess, read_state, write_state


def test_state_file_round_trips_values_a_shell_can_source(tmp_path: Path) -> None:
    values = {"MOTO_PID": "123", "AGENT_CMD": "python agent_src/main.py", "EMPTY": ""}
    path = write_state(tmp_path, values)
    assert "AGENT_CMD='python agent_src/main.py'" in path.read_text()
    state = read_state(tmp_path)
    assert state is not None
    assert state.values == values
    assert state.pids == {"moto server": 123}


def test_settings_defaults_suit_a_demo(tmp_path: Path) -> None:
    settings = StackSettings.from_env({"LOCAL_STATE_DIR": str(tmp_path)})
    assert settings.poller_interval_s == 2.0
    assert settings.fastpath == "1"
    assert settings.moto_port == settings.runtime_port == 0
    assert settings.runtime_arn.startswith("arn:aws:bedrock-agentcore:us-east-1:123456789012:")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POLLER_INTERVAL_S", "0"),
        ("POLLER_INTERVAL_S", "soon"),
        ("LOCAL_FASTPATH", "yes"),
        ("LOCAL_MOTO_PORT", "70000"),
    ],
)
def test_malformed_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(StackSettingsError, match=name):
        StackSettings.from_env({name: value})


def test_a_recycled_pid_is_not_ours() -> None:
    # This process is alive, but neither its command line nor its start time is the record's.
    recorded = RecordedProcess("moto server", os.getpid(), ("python", "-m", "x"), 1000.0)
    assert not is_ours(recorded)


def test_lambda_context_counts_down_from_the_timeout() -> None:
    context = LambdaContext(timeout_s=30, region="us-east-1")
    remaining = context.get_remaining_time_in_millis()
    assert 0 < remaining <= 30_000
    assert context.invoked_function_arn.startswith("arn:aws:lambda:us-east-1:")


def test_scheduled_event_names_no_jobs() -> None:
    event = scheduled_event("us-east-1")
    assert "job_id" not in event
    assert "job_ids" not in event
    assert event["source"] == "aws.scheduler"
