"""The `agentjobs` command line: submit jobs and follow them in the job table."""

from __future__ import annotations

import os
import sys

from agentjobs.cli.app import app
from agentjobs.cli.errors import CliError, ExitCode, one_line


def main() -> None:
    """Entry point of the `agentjobs` console script: every failure is one line on stderr.

    Usage errors and exit codes are typer's (it raises SystemExit itself); anything else
    that escapes a command becomes one line here, never a traceback."""
    try:
        app()
    except CliError as exc:
        _fail(exc.message, exc.code)
    except KeyboardInterrupt:
        _fail("interrupted", ExitCode.INTERRUPTED)
    except Exception as exc:
        if os.environ.get("AGENTJOBS_DEBUG"):
            raise
        _fail(
            f"unexpected {type(exc).__name__}: {one_line(str(exc))} "
            "(set AGENTJOBS_DEBUG=1 to see where, and please report it)",
            ExitCode.ERROR,
        )


def _fail(message: str, code: int) -> None:
    print(f"agentjobs: error: {one_line(message, limit=1000)}", file=sys.stderr)
    sys.exit(code)
