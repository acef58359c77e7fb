"""What the job commands share: the options that name a stack and a job, and the console."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


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
