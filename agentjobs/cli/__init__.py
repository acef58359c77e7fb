"""The `agentjobs` command line: submit jobs and follow them in the job table."""

from __future__ import annotations

import os
import sys

INTERRUPTED = 130
USAGE = 2


def main() -> None:
    """Entry point of the `agentjobs` console script: every failure is one line on stderr.

    Usage errors and exit codes are typer's (it raises SystemExit itself); anything else
    that escapes a command becomes one line here, never a traceback."""
    # Linux hands over argument bytes that are not UTF-8 as lone surrogates: refuse them
    # before any of them is used or echoed back (no terminal could print them).
    for position, argument in enumerate(sys.argv[1:], start=1):
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:
            _fail(f"argument {position} is not UTF-8 text; pass Unicode text only", USAGE)
    try:
        # Imported here, inside the guard: the imports take most of a second, and a Ctrl-C
        # during them must not print a traceback either.
        from agentjobs.cli.app import app  # noqa: PLC0415
        from agentjobs.cli.errors import CliError, ExitCode, one_line  # noqa: PLC0415
    except KeyboardInterrupt:
        _fail("interrupted", INTERRUPTED)
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
    # Messages quote job text (an agent's error, a job id): shown as text, on one line.
    from agentjobs.cli.terminal_text import printable  # noqa: PLC0415

    flat = " ".join(printable(message).split())
    print(f"agentjobs: error: {flat}", file=sys.stderr)
    sys.exit(code)
