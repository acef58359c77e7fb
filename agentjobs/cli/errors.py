"""The CLI's exit codes and its one-line errors: what is wrong and what to do, never a traceback."""

from __future__ import annotations

from enum import IntEnum

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from agentjobs.protocol import JobStatus


class ExitCode(IntEnum):
    """How a command ended; `wait` (and `submit --wait`) also say how the job ended."""

    OK = 0
    """The command did what was asked; for `wait`, the job SUCCEEDED."""
    ERROR = 1
    """Bad input, a missing job or stack, no credentials, an unreachable service."""
    USAGE = 2
    """Wrong options or arguments (typer's own code)."""
    JOB_FAILED = 3
    JOB_CANCELLED = 4
    JOB_TIMED_OUT = 5
    JOB_LOST = 6
    STILL_RUNNING = 7
    """`wait --timeout` elapsed, or `result` was asked of a job that has not finished."""
    INTERRUPTED = 130
    """Ctrl-C."""


JOB_EXIT_CODES = {
    JobStatus.SUCCEEDED: ExitCode.OK,
    JobStatus.FAILED: ExitCode.JOB_FAILED,
    JobStatus.CANCELLED: ExitCode.JOB_CANCELLED,
    JobStatus.TIMED_OUT: ExitCode.JOB_TIMED_OUT,
    JobStatus.LOST: ExitCode.JOB_LOST,
    JobStatus.RUNNING: ExitCode.STILL_RUNNING,
}


class CliError(Exception):
    """A failure shown to the user as one line on stderr, with a non-zero exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


CREDENTIALS_HINT = (
    "configure AWS credentials (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID), "
    "or start the local stack with `make local-up`"
)


_CREDENTIAL_ERRORS = frozenset(
    {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException"}
)


def explain_aws_error(exc: Exception, what: str) -> CliError:
    """Translate a boto3 failure while doing `what` into a one-line CliError."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        message = f"no AWS credentials found while {what}: {CREDENTIALS_HINT}"
    elif isinstance(exc, NoRegionError):
        message = f"no AWS region set while {what}: pass --region or set AWS_REGION"
    elif isinstance(exc, EndpointConnectionError):
        endpoint = exc.kwargs.get("endpoint_url", "the AWS endpoint")
        message = (
            f"cannot reach {endpoint} while {what}: "
            "if this is the local stack, start it with `make local-up`"
        )
    elif isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Error")
        if code in _CREDENTIAL_ERRORS:
            message = f"AWS refused the credentials while {what} ({code}): {CREDENTIALS_HINT}"
        else:
            detail = one_line(error.get("Message", "") or "no message")
            message = f"AWS answered {code} while {what}: {detail}"
    elif isinstance(exc, BotoCoreError):
        message = f"AWS call failed while {what}: {one_line(str(exc))}"
    else:
        message = f"unexpected {type(exc).__name__} while {what}"
    return CliError(message)


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so that a message stays on one line, and bound its length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
