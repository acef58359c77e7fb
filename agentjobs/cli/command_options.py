"""What the job commands share: the options that name a stack and a job, and the console."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console


def _console() -> Console:
    console = Console(soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped output: rich would assume 80 columns and squeeze job ids in tables.
        console = Console(soft_wrap=True, width=160)
    return console


class _Out:
    """The console of the command being run, made when the command first prints: the
    terminal (and COLUMNS) are read then, not when the CLI was imported."""

    def __init__(self) -> None:
        self._made: tuple[tuple[bool, str | None], Console] | None = None

    def get(self) -> Console:
        """This run's console: made again if stdout or COLUMNS changed since."""
        key = (sys.stdout.isatty(), os.environ.get("COLUMNS"))
        if self._made is None or self._made[0] != key:
            self._made = (key, _console())
        return self._made[1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


out = _Out()

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
