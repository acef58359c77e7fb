"""`agentjobs events`: a job's history, oldest first, read from the history table."""

from __future__ import annotations

from botocore.exceptions import ClientError

from agentjobs.cli import job_operations
from agentjobs.cli.discovery import Resources
from agentjobs.cli.errors import CliError, ExitCode, explain_aws_error
from agentjobs.history import Event, EventLog
from agentjobs.protocol import JOB_ID_PATTERN
from agentjobs.store import StoreError, error_code

SHOWN_ID_CHARS = 64
"""How much of a malformed job id an error quotes: enough to recognise it, never a page."""

NO_HISTORY_HINT = (
    "the stack predates job histories: deploy this version (`make deploy`), or restart the "
    "local stack (`make local-down`, then `make local-up`)"
)


def check_job_id(job_id: str) -> None:
    """A usage error unless `job_id` has the form submit answers (32 lowercase hex)."""
    if not JOB_ID_PATTERN.fullmatch(job_id):
        shown = job_id if len(job_id) <= SHOWN_ID_CHARS else job_id[:SHOWN_ID_CHARS] + "..."
        raise CliError(
            f"{shown!r} is not a job id: expected 32 lowercase hexadecimal characters, as "
            "`agentjobs submit` printed it (find ids with `agentjobs list`)",
            ExitCode.USAGE,
        )


def events_table(resources: Resources) -> str:
    """The history table these resources name, or a CliError saying none is named."""
    if not resources.events_table:
        raise CliError(
            f"{resources.source} names no history table (EVENTS_TABLE, or the stack output "
            f"EventsTableName): {NO_HISTORY_HINT}"
        )
    return resources.events_table


def read_events(resources: Resources, job_id: str) -> list[Event]:
    """The job's events, oldest first. A CliError for a malformed id (exit 2), a job that
    neither table knows, or a history table that is not there or cannot be read."""
    check_job_id(job_id)
    table = events_table(resources)
    log = EventLog(resources.client("dynamodb"), table)
    try:
        found = log.list(job_id)
    except StoreError as exc:
        cause = exc.__cause__
        if isinstance(cause, ClientError) and error_code(cause) == "ResourceNotFoundException":
            raise CliError(
                f"the history table {table} ({resources.source}) does not exist: {NO_HISTORY_HINT}"
            ) from exc
        raise explain_aws_error(
            cause if isinstance(cause, Exception) else exc, f"reading the history table {table}"
        ) from exc
    # No events: a job from before histories were kept has none; an unknown job is an error.
    if not found and job_operations.find_record(resources, job_id) is None:
        raise CliError(
            f"no job {job_id} in table {resources.require('table')} ({resources.source}): "
            "check the id with `agentjobs list`"
        )
    return found
