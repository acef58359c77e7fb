"""The `agentjobs` commands: submit, status, events, list, result, wait, cancel, notifications."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from agentjobs.cli import history, inbox, inputs, jobs, listing, render
from agentjobs.cli.discovery import Resources, discover
from agentjobs.cli.doctor import EXIT_CODES_HELP as DOCTOR_EXIT_CODES_HELP
from agentjobs.cli.doctor import doctor_command
from agentjobs.cli.errors import JOB_EXIT_CODES, CliError, ExitCode
from agentjobs.cli.terminal_text import printable
from agentjobs.limits import MAX_ATTEMPTS
from agentjobs.protocol import JobStatus
from agentjobs.record import JobRecord

EXIT_CODES_HELP = (
    "Exit codes: 0 the job SUCCEEDED, 3 FAILED, 4 CANCELLED, 5 TIMED_OUT, 6 LOST, "
    "7 still running when --timeout elapsed, 1 error (bad input, unknown job, "
    "unreachable stack), 2 usage error, 130 interrupted."
)

app = typer.Typer(
    name="agentjobs",
    help="Submit long-running agent jobs to AgentCore Runtime and follow them in the job table.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _console() -> Console:
    console = Console(soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped output: rich would assume 80 columns and squeeze job ids in tables.
        console = Console(soft_wrap=True, width=160)
    return console


out = _console()

StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        envvar="AGENTJOBS_STACK",
        help="Deployed stack name: resources from its CloudFormation outputs.",
    ),
]
RegionOption = Annotated[str | None, typer.Option("--region", help="AWS region of --stack.")]
LocalEnvOption = Annotated[
    Path | None,
    typer.Option("--local-env", help="The local stack's env file (default: ./.local/env)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
JobIdArgument = Annotated[str, typer.Argument(help="The job id that submit printed.")]


def _resources(stack: str | None, region: str | None, local_env: Path | None) -> Resources:
    return discover(stack, region, local_env)


@app.command()
def submit(
    kind: Annotated[
        str, typer.Argument(help="Job kind: the name of a job the agent declares (e.g. synthetic).")
    ],
    *,
    input_json: Annotated[
        str | None, typer.Option("--input", help="The job input as a JSON object.")
    ] = None,
    input_file: Annotated[
        str | None,
        typer.Option("--input-file", help="A file holding the input JSON; - reads stdin."),
    ] = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="One input field, key=value (JSON values parsed; @path reads a file). Repeatable.",
        ),
    ] = None,
    client_token: Annotated[
        str | None,
        typer.Option("--client-token", help="Idempotency token: the same token, the same job."),
    ] = None,
    max_runtime_s: Annotated[
        float | None, typer.Option("--max-runtime-s", help="Fail the job after this long.")
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            "--max-attempts",
            min=1,
            max=MAX_ATTEMPTS,
            help="Tries of a resumable job: a lost session resumes it from its last checkpoint.",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job until it ends.")] = False,
    timeout_s: Annotated[
        float | None, typer.Option("--timeout", help="With --wait: stop waiting after this.")
    ] = None,
    stack: StackOption = None,
    region: RegionOption = None,
    local_env: LocalEnvOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a job; print its job id and session id at once. With --wait, follow it
    (exit codes as for `wait`)."""
    job_input = inputs.job_input(input_json, input_file, assignments or [])
    resources = _resources(stack, region, local_env)
    answer = jobs.submit(
        resources,
        kind,
        job_input,
        client_token=client_token,
        max_runtime_s=max_runtime_s,
        max_attempts=max_attempts,
    )
    job_id = str(answer.get("job_id", ""))
    if not wait:
        if as_json:
            render.print_json(answer)
        else:
            shown_kind = answer.get("kind", kind)
            out.print(render.line("Submitted job ", (job_id, "bold"), f" ({shown_kind})"))
            out.print(render.line(f"  session  {answer.get('session_id')}"))
            out.print(render.line(f"  follow   agentjobs wait {job_id}"))
        return
    if not as_json:
        session = answer.get("session_id")
        out.print(render.line("Submitted job ", (job_id, "bold"), f" in session {session}"))
    _wait_and_exit(resources, job_id, as_json=as_json, interval_s=1.0, timeout_s=timeout_s)


@app.command()
def status(
    job_id: JobIdArgument,
    *,
    stack: StackOption = None,
    region: RegionOption = None,
    local_env: LocalEnvOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a job's record: status, progress, attempt, times, error."""
    record = jobs.get_record(_resources(stack, region, local_env), job_id)
    if as_json:
        render.print_json(render.record_json(record))
    else:
        out.print(render.record_table(record))


@app.command()
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
    found = history.read_events(_resources(stack, region, local_env), job_id)
    if as_json:
        render.print_json([event.to_wire() for event in found])
    elif not found:
        out.print(render.line(f"No events recorded for job {job_id}."))
    else:
        out.print(render.events_table(found))


@app.command(name="list")
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
    resources = _resources(stack, region, local_env)
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


@app.command()
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
    resources = _resources(stack, region, local_env)
    record = jobs.get_record(resources, job_id)
    if record.status != JobStatus.SUCCEEDED:
        _refuse_result(record, as_json=as_json)
    value = jobs.read_result(resources, record)
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
        render.print_result(out, value)


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


@app.command(epilog=EXIT_CODES_HELP)
def wait(
    job_id: JobIdArgument,
    *,
    timeout_s: Annotated[
        float | None, typer.Option("--timeout", help="Stop waiting after this many seconds.")
    ] = None,
    interval_s: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between reads of the record.")
    ] = 1.0,
    stack: StackOption = None,
    region: RegionOption = None,
    local_env: LocalEnvOption = None,
    as_json: JsonOption = False,
) -> None:
    """Follow a job with a progress bar until it ends; the exit code says how it ended."""
    _wait_and_exit(
        _resources(stack, region, local_env),
        job_id,
        as_json=as_json,
        interval_s=interval_s,
        timeout_s=timeout_s,
    )


def _wait_and_exit(
    resources: Resources,
    job_id: str,
    *,
    as_json: bool,
    interval_s: float,
    timeout_s: float | None,
) -> None:
    try:
        if as_json:
            record = jobs.follow(
                resources, job_id, lambda _: None, interval_s=interval_s, timeout_s=timeout_s
            )
        elif out.is_terminal:
            record = _follow_with_bar(resources, job_id, interval_s, timeout_s)
        else:
            record = _follow_with_lines(resources, job_id, interval_s, timeout_s)
    except KeyboardInterrupt:
        # Without this, click would print "Aborted!" and exit 1.
        raise CliError(
            f"interrupted; job {job_id} keeps running: follow it again with "
            f"`agentjobs wait {job_id}`",
            ExitCode.INTERRUPTED,
        ) from None
    if as_json:
        render.print_json(render.record_json(record))
    else:
        _print_ending(record)
    raise typer.Exit(JOB_EXIT_CODES.get(record.status, ExitCode.ERROR))


def _follow_with_bar(
    resources: Resources, job_id: str, interval_s: float, timeout_s: float | None
) -> JobRecord:
    # markup=False: the job id and the job's progress message are text, never markup.
    columns = (
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[message]}", markup=False),
    )
    with Progress(*columns, console=out) as bar:
        task = bar.add_task(
            printable(job_id[:12]), total=100, message="waiting for the first update"
        )

        def show(record: JobRecord) -> None:
            done = 100 if record.status == JobStatus.SUCCEEDED else record.progress.percent
            bar.update(
                task,
                completed=done,
                message=printable(record.progress.message or str(record.status)),
            )

        return jobs.follow(resources, job_id, show, interval_s=interval_s, timeout_s=timeout_s)


def _follow_with_lines(
    resources: Resources, job_id: str, interval_s: float, timeout_s: float | None
) -> JobRecord:
    last: list[tuple[str, float, str]] = []

    def show(record: JobRecord) -> None:
        state = (str(record.status), record.progress.percent, record.progress.message)
        if not last or last[-1] != state:
            last.append(state)
            out.print(
                render.line(
                    f"{record.status} {record.progress.percent:5.1f}%  {record.progress.message}"
                )
            )

    return jobs.follow(resources, job_id, show, interval_s=interval_s, timeout_s=timeout_s)


def _print_ending(record: JobRecord) -> None:
    if record.status == JobStatus.RUNNING:
        out.print(
            render.line(
                f"Job {record.job_id} is still RUNNING after the timeout "
                f"({record.progress.percent:.0f}%)."
            )
        )
        return
    took = render.duration(record)
    ending = render.line(
        f"Job {record.job_id} ", render.status_text(record.status), f" after {took}"
    )
    if record.error is not None:
        ending.append_text(render.line(f": {record.error.code}: {record.error.message}"))
    out.print(ending)
    if record.status == JobStatus.SUCCEEDED:
        out.print(render.line(f"  result  agentjobs result {record.job_id}"))


@app.command()
def cancel(
    job_id: JobIdArgument,
    *,
    stack: StackOption = None,
    region: RegionOption = None,
    local_env: LocalEnvOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a running job through its own session; a finished job is left as it is."""
    resources = _resources(stack, region, local_env)
    record = jobs.get_record(resources, job_id)
    if record.status.is_terminal:
        if as_json:
            render.print_json(render.record_json(record))
        else:
            out.print(
                render.line(f"Job {job_id} already ended ", render.status_text(record.status), ".")
            )
        return
    answer = jobs.cancel(resources, record)
    if as_json:
        render.print_json(answer)
        return
    status_value = str(answer.get("status", "?"))
    known = status_value in JobStatus.__members__
    shown = render.status_text(JobStatus(status_value) if known else status_value)
    out.print(render.line(f"Job {job_id}: ", shown))


@app.command()
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
    resources = _resources(stack, region, local_env)
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


app.command(name="doctor", epilog=DOCTOR_EXIT_CODES_HELP)(doctor_command)
