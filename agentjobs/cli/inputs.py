"""Parse what the user typed: job input (flags, JSON, a file, stdin) and time bounds."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentjobs.cli.errors import CliError
from agentjobs.protocol import format_time

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def job_input(
    input_json: str | None, input_file: str | None, assignments: list[str]
) -> dict[str, Any]:
    """The job's input object: `--input` JSON or `--input-file` (`-` for stdin), then each
    `--set key=value` on top (value parsed as JSON when it is, `@path` reads a file's text)."""
    if input_json is not None and input_file is not None:
        raise CliError("give --input or --input-file, not both")
    value: Any = {}
    if input_json is not None:
        value = _parse_json(input_json, "--input")
    elif input_file is not None:
        value = _parse_json(_read_input_file(input_file), f"--input-file {input_file}")
    if not isinstance(value, dict):
        raise CliError(
            "the job input must be a JSON object such as '{\"seconds\": 5}'; "
            f"got {type(value).__name__}"
        )
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key:
            raise CliError(f"--set {assignment!r} is not key=value: write e.g. --set seconds=5")
        value[key] = _assigned_value(raw)
    return value


def _read_input_file(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CliError(f"--input-file {path} does not exist: give the path of a JSON file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--input-file {path} cannot be read as UTF-8 text") from exc


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            "pass a JSON object such as '{\"seconds\": 5}'"
        ) from exc


def _assigned_value(raw: str) -> Any:
    if raw.startswith("@"):
        path = Path(raw[1:])
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise CliError(f"--set ...=@{path}: {path} does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--set ...=@{path}: {path} cannot be read as UTF-8 text") from exc
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def time_bound(text: str | None, option: str) -> str | None:
    """A protocol time from an ISO 8601 time or date, or an age such as 30m, 2h, 7d."""
    if text is None:
        return None
    match = _RELATIVE.match(text.strip())
    if match:
        age = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        return format_time(datetime.now(UTC) - age)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise CliError(
            f"{option} {text!r} is not a time: give an age such as 30m, 2h, 7d "
            "or an ISO 8601 time such as 2026-11-26T14:00:00Z"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_time(moment)
