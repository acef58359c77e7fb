"""The `agentjobs` commands: submit, status, events, list, result, wait, cancel, notifications."""

from __future__ import annotations

import typer

from agentjobs.cli import job_commands, reading_commands
from agentjobs.cli.doctor import EXIT_CODES_HELP as DOCTOR_EXIT_CODES_HELP
from agentjobs.cli.doctor import doctor_command

app = typer.Typer(
    name="agentjobs",
    help="Submit long-running agent jobs to AgentCore Runtime and follow them in the job table.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Registered here, in the order `agentjobs --help` lists them.
app.command()(job_commands.submit)
app.command()(reading_commands.status)
app.command()(reading_commands.events)
app.command(name="list")(reading_commands.list_jobs)
app.command()(reading_commands.result)
app.command(epilog=job_commands.EXIT_CODES_HELP)(job_commands.wait)
app.command()(job_commands.cancel)
app.command()(reading_commands.notifications)
app.command(name="doctor", epilog=DOCTOR_EXIT_CODES_HELP)(doctor_command)
