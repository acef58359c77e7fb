"""The local stack's env file: KEY=value lines, quoted and read as a POSIX shell would."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path


class EnvFileError(ValueError):
    """A line of an env file that a shell would not read as KEY=value."""


def parse_env_text(text: str) -> dict[str, str]:
    """KEY=value lines as `set -a; . file` would assign them: blank lines and # comments
    skipped, an `export ` prefix allowed, the value unquoted by shell rules (the first word of
    an unquoted value, as a shell would assign it)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.removeprefix("export ").strip()
        try:
            words = shlex.split(value, comments=True)
        except ValueError as exc:
            raise EnvFileError(f"line {number} ({key}): {exc}; quote it as a shell would") from None
        values[key] = words[0] if words else ""
    return values


def read_env_file(path: Path) -> dict[str, str]:
    """The values of the env file at `path` (see parse_env_text)."""
    return parse_env_text(path.read_text(encoding="utf-8"))


def format_env_lines(values: Mapping[str, str]) -> list[str]:
    """One KEY=value line a value, quoted only where a shell needs it: the inverse of
    parse_env_text."""
    return [f"{key}={shlex.quote(value)}" for key, value in values.items()]
