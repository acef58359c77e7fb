"""The commands that read what the stack holds: status, events, list, result, notifications."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from agentjobs.cli import history, inbox, inputs, job_operations, listing, render
from agentjobs.cli.command_options import (
    JobIdArgument,
    JsonOption,
    LocalEnvOption,
    RegionOption,
    StackOption,
    out,
)
from agentjobs.cli.discovery import discover
from agentjobs.cli.errors import JOB_EXIT_CODES, CliError, ExitCode
from agentjobs.protocol import JobStatus
from agentjobs.record import JobRecord


def status(
    job_id: JobIdArgument,
    *,
    stack: StackOption = None,
    region: RegionOption = None,
    local_env: LocalEnvOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a job's record: status, progress, attempt, times, error."""
    record = job_operations.get_record(discover(stack, region, local_env), job_id)
    if as_json:
        render.print_json(render.record_json(record))
    else:
        out.print(render.record_table(record))


def events(
    job_id: JobIdArgument,
    *,
    stack: StackOption = None,
    region: RegionOption = None,
    local_env: LocalEnvOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a job's history, oldest first: submitted, progress, checkpoints, lost sessions,
    resumes, retries, its end and its notification."""
    found = history.read_events(discover(stack, region, local_env), job_id)
    if as_json:
        render.print_json([event.to_wire() for event in found])
    elif not found:
        out.print(render.line(f"No events recorded for job {job_id}."))
    else:
        out.print(render.events_table(found))


def list_jobs(
    *,
    statuses: Annotated[
        list[JobStatus] | None,
        typer.Option("--status", help="Only jobs with this status. Repeatable.", show_choices=True),
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only jobs of this kind.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Submitted at or after: 30m, 2h, 7d or ISO time.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Submitted at or before: an age or ISO time.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Jobs per page.")] = 20,
    next_token: Annotated[
        str | None, typer.Option("--next-token", help="The token a previous page printed.")
    ] = None,
    stack: StackOption = None,
    region: RegionOption = None,
    local_env: LocalEnvOption = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first, a page at a time (through the status index, never a scan)."""
    job_filter = listing.JobFilter(
        statuses=tuple(statuses or ()),
        kind=kind,
        since=inputs.time_bound(since, "--since"),
        until=inputs.time_bound(until, "--until"),
    )
    resources = discover(stack, region, local_env)
    page = listing.list_jobs(
        resources.client("dynamodb"), resources.require("table"), job_filter, limit, next_token
    )
    if as_json:
        render.print_json(
            {"jobs": [render.record_json(r) for r in page.records], "next_token": page.next_token}
        )
        return
    if not page.records:
        out.print("No jobs match.")
        return
    out.print(render.jobs_table(page.records))
    if page.next_token:
        out.print(render.line(f"More: agentjobs list --next-token {page.next_token}"))


def result(
    job_id: JobIdArgument,
    *,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Save the result here (a .md path saves a Markdown report)."
        ),
    ] = None,
    stack: StackOption = None,
    region: RegionOption = None,
    local_env: LocalEnvOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print or save a finished job's result (fetched from S3 when it was stored there)."""
    resources = discover(stack, region, local_env)
    record = job_operations.get_record(resources, job_id)
    if record.status != JobStatus.SUCCEEDED:
        _refuse_result(record, as_json=as_json)
    value = job_operations.read_result(resources, record)
    if output is not None:
        report = render.markdown_of(value)
        text = (
            report
            if report is not None and output.suffix == ".md"
            else json.dumps(value, indent=2, ensure_ascii=False)
        )
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror}") from exc
        if as_json:
            render.print_json({"job_id": job_id, "status": "SUCCEEDED", "saved_to": str(output)})
        else:
            out.print(render.line(f"Saved the result of job {job_id} to {output}"))
        return
    if as_json:
        render.print_json({"job_id": job_id, "status": str(record.status), "result": value})
    else:
        render.print_result(out.get(), value)


def _refuse_result(record: JobRecord, *, as_json: bool) -> None:
    code = JOB_EXIT_CODES.get(record.status, ExitCode.ERROR)
    if as_json:
        render.print_json(render.record_json(record))
        raise typer.Exit(code)
    if record.status == JobStatus.RUNNING:
        raise CliError(
            f"job {record.job_id} is still RUNNING ({record.progress.percent:.0f}%): "
            f"wait for it with `agentjobs wait {record.job_id}`",
            code,
        )
    reason = f": {record.error.code}: {record.error.message}" if record.error else ""
    raise CliError(f"job {record.job_id} ended {record.status}{reason}", code)


def notifications(
    *,
    job_id: Annotated[
        str | None, typer.Option("--job", help="Only the notifications of this job.")
    ] = None,
    wait_s: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to wait for the first notification.")
    ] = 0,
    max_messages: Annotated[int, typer.Option("--max", min=1, help="At most this many.")] = 10,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the shown notifications in the inbox.")
    ] = False,
    stack: StackOption = None,
    region: RegionOption = None,
    local_env: LocalEnvOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the job notifications the local inbox queue received (and remove them from it)."""
    resources = discover(stack, region, local_env)
    if not resources.inbox_queue_url:
        raise CliError(
            f"{resources.source} has no inbox queue (INBOX_QUEUE_URL): notifications are read "
            f"from the local stack's inbox; a deployed stack notifies through its SNS topic "
            f"{resources.topic_arn or ''}, subscribe to it instead".replace("  ", " ")
        )
    found = inbox.receive(
        resources.client("sqs"),
        resources.inbox_queue_url,
        max_messages=max_messages,
        wait_s=wait_s,
        job_id=job_id,
        keep=keep,
    )
    if as_json:
        render.print_json({"notifications": [n.to_json() for n in found]})
        return
    if not found:
        out.print("No notifications in the inbox.")
    for note in found:
        out.print(render.notification_panel(note))
