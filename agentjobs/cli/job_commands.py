"""The commands that start, follow and cancel a job: submit, wait and cancel."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from agentjobs.cli import inputs, job_operations, render
from agentjobs.cli.command_options import (
    JobIdArgument,
    JsonOption,
    LocalEnvOption,
    RegionOption,
    StackOption,
    out,
)
from agentjobs.cli.discovery import Resources, discover
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
    resources = discover(stack, region, local_env)
    answer = job_operations.submit(
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
        discover(stack, region, local_env),
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
            record = job_operations.follow(
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
    with Progress(*columns, console=out.get()) as bar:
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

        return job_operations.follow(
            resources, job_id, show, interval_s=interval_s, timeout_s=timeout_s
        )


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

    return job_operations.follow(
        resources, job_id, show, interval_s=interval_s, timeout_s=timeout_s
    )


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


def cancel(
    job_id: JobIdArgument,
    *,
    stack: StackOption = None,
    region: RegionOption = None,
    local_env: LocalEnvOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a running job through its own session; a finished job is left as it is."""
    resources = discover(stack, region, local_env)
    record = job_operations.get_record(resources, job_id)
    if record.status.is_terminal:
        if as_json:
            render.print_json(render.record_json(record))
        else:
            out.print(
                render.line(f"Job {job_id} already ended ", render.status_text(record.status), ".")
            )
        return
    answer = job_operations.cancel(resources, record)
    if as_json:
        render.print_json(answer)
        return
    status_value = str(answer.get("status", "?"))
    known = status_value in JobStatus.__members__
    shown = render.status_text(JobStatus(status_value) if known else status_value)
    out.print(render.line(f"Job {job_id}: ", shown))
