"""What every job kind sees: a context to report progress and notice a stop, and its errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agentjobs.protocol import ErrorCode, JobKind, ProtocolError
from jobagent.settings import Settings


class JobFailed(Exception):  # noqa: N818 - a job outcome, not a programming error
    """The job ends FAILED with this message, which the caller sees verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobStopped(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside a job when it is asked to stop (cancel, deadline, shutdown)."""


class JobContext(Protocol):
    """How a running job talks to the runner."""

    def report(self, percent: float, message: str) -> None:
        """Publish progress; cheap enough to call per step."""

    def sleep(self, seconds: float) -> None:
        """Wait, but raise JobStopped at once when the job is asked to stop."""

    def check_stop(self) -> None:
        """Raise JobStopped when the job has been asked to stop."""


@dataclass(frozen=True)
class KindSpec:
    """One job kind: how its input is validated and how it runs.

    `parse` gets the agent's settings (what a kind may read depends on them). `run` must be
    a module-level function and `parse`'s result picklable: work that runs in a child
    process gets both by pickle.
    """

    kind: JobKind
    parse: Callable[[dict[str, Any], Settings], Any]
    run: Callable[[Any, JobContext], Any]
    in_child: Callable[[Any], bool]
    needs_model: bool = False


def invalid_input(message: str) -> ProtocolError:
    """The error a kind raises for input it cannot run."""
    return ProtocolError(ErrorCode.INVALID_INPUT, message)


def reject_unknown(job_input: dict[str, Any], allowed: set[str], kind: JobKind) -> None:
    """Refuse input fields the kind does not know, so typos are not silently ignored."""
    unknown = sorted(str(k) for k in job_input if k not in allowed)
    if unknown:
        raise invalid_input(
            f"unknown input field(s) {', '.join(unknown)} for kind {kind}; "
            f"expected only {', '.join(sorted(allowed))}"
        )


def number_field(
    job_input: dict[str, Any], name: str, default: float, low: float, high: float
) -> float:
    """A numeric input field within [low, high]."""
    value = job_input.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or not low <= value <= high
    ):
        raise invalid_input(f"'{name}' must be a number from {low:g} to {high:g}")
    return float(value)


def int_field(job_input: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """A whole-number input field within [low, high]."""
    value = job_input.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid_input(f"'{name}' must be a whole number from {low} to {high}")
    return value


def bool_field(job_input: dict[str, Any], name: str, default: bool) -> bool:
    """A boolean input field."""
    value = job_input.get(name, default)
    if not isinstance(value, bool):
        raise invalid_input(f"'{name}' must be true or false")
    return value


def optional_text_field(job_input: dict[str, Any], name: str, max_chars: int) -> str | None:
    """A string field that may be absent or null."""
    value = job_input.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise invalid_input(
            f"'{name}' must be null or a non-empty string of at most {max_chars} characters"
        )
    return value
