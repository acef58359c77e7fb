"""How the CLI reads job input, time bounds, page tokens and env files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentjobs.cli.discovery import read_env_file
from agentjobs.cli.errors import CliError
from agentjobs.cli.inbox import unwrap
from agentjobs.cli.inputs import job_input, time_bound
from agentjobs.cli.listing import decode_token, encode_token
from agentjobs.protocol import JobStatus, parse_time
from agentjobs.record import JobRecord


def test_set_values_are_parsed_as_json_when_they_are_json(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    value = job_input(
        '{"seconds": 1, "fail": null}',
        None,
        ["seconds=2.5", "cpu=true", "title=Sales 2026", "csv=@" + str(csv), "empty="],
    )
    assert value == {
        "seconds": 2.5,
        "fail": None,
        "cpu": True,
        "title": "Sales 2026",
        "csv": "a,b\n1,2\n",
        "empty": "",
    }


def test_input_file_is_read_as_json(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{"prompt": "summarise"}')
    assert job_input(None, str(path), []) == {"prompt": "summarise"}


def test_relative_time_bound_is_that_long_ago() -> None:
    bound = time_bound("2h", "--since")
    assert bound is not None
    age = datetime.now(UTC) - parse_time(bound)
    assert timedelta(hours=2) <= age < timedelta(hours=2, minutes=1)


def test_iso_time_bound_without_zone_is_utc() -> None:
    assert time_bound("2026-11-20T10:03:00", "--since") == "2026-11-20T10:03:00.000Z"
    assert time_bound("2026-11-20", "--until") == "2026-11-20T00:00:00.000Z"


def test_page_token_round_trips_and_foreign_tokens_are_refused() -> None:
    record = JobRecord(
        job_id="j1",
        session_id="s" * 40,
        kind="synthetic",
        status=JobStatus.RUNNING,
        submitted_at="2026-11-20T10:00:00.000Z",
        updated_at="2026-11-20T10:00:00.000Z",
        max_runtime_s=60,
        deadline_at="2026-11-20T10:01:00.000Z",
    )
    assert decode_token(encode_token(record)) == ("2026-11-20T10:00:00.000Z", "j1")
    with pytest.raises(CliError):
        decode_token("eyJub3QiOiAidXMifQ")


def test_env_file_lines_are_read_like_a_shell_would(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("# comment\n\nexport A=1\nB='two words'\nC=x=y\n")
    assert read_env_file(path) == {"A": "1", "B": "two words", "C": "x=y"}


def test_sns_envelope_is_unwrapped_and_plain_text_kept() -> None:
    message, envelope = unwrap('{"Type": "Notification", "Message": "{\\"job_id\\": \\"j\\"}"}')
    assert message == {"job_id": "j"}
    assert envelope["Type"] == "Notification"
    message, _ = unwrap('{"Type": "Notification", "Message": "hello"}')
    assert message == {"text": "hello"}
