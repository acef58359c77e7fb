"""How records, pages, results and notifications look: rich for people, JSON for scripts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table

from agentjobs.cli.inbox import Notification
from agentjobs.protocol import JobStatus, parse_time
from agentjobs.record import JobRecord

STATUS_STYLES = {
    JobStatus.RUNNING: "cyan",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "yellow",
    JobStatus.TIMED_OUT: "red",
    JobStatus.LOST: "magenta",
}

MARKDOWN_FIELDS = ("markdown", "report", "report_markdown")
"""Result fields that hold a Markdown report (data_report's), rendered as Markdown."""


def print_json(value: Any) -> None:
    """One JSON document on stdout; plain print so that nothing wraps or colours it."""
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def record_json(record: JobRecord) -> dict[str, Any]:
    """A record for `--json`: the agent's status answer plus what the poller added."""
    answer = record.to_answer(with_outcome=False)
    answer["updated_at"] = record.updated_at
    for name in ("result_uri", "notified_at", "session_stopped_at", "client_token"):
        value = getattr(record, name)
        if value is not None:
            answer[name] = value
    return answer


def status_text(status: JobStatus) -> str:
    """The status in its colour."""
    return f"[{STATUS_STYLES.get(status, 'white')}]{status}[/]"


def duration(record: JobRecord) -> str:
    """How long the job ran (or has been running, by its last update)."""
    end = record.finished_at or record.updated_at
    seconds = (parse_time(end) - parse_time(record.submitted_at)).total_seconds()
    minutes, secs = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}m{secs:04.1f}s" if minutes else f"{secs:.1f}s"


def short_time(text: str | None) -> str:
    """A protocol time as local-free, second-precision UTC."""
    if not text:
        return "-"
    moment: datetime = parse_time(text)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def record_table(record: JobRecord) -> Table:
    """One job, field by field."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("job", record.job_id)
    table.add_row("kind", str(record.kind))
    table.add_row("status", status_text(record.status))
    progress = f"{record.progress.percent:.0f}%"
    if record.progress.message:
        progress += f"  {record.progress.message}"
    table.add_row("progress", progress)
    table.add_row("session", record.session_id)
    table.add_row("submitted", short_time(record.submitted_at))
    table.add_row("finished", short_time(record.finished_at))
    table.add_row("duration", duration(record))
    if record.error is not None:
        table.add_row("error", f"[red]{record.error.code}[/]: {record.error.message}")
    if record.result_uri:
        table.add_row("result", record.result_uri)
    if record.notified_at:
        table.add_row("notified", short_time(record.notified_at))
    return table


def jobs_table(records: list[JobRecord]) -> Table:
    """A page of jobs, newest first."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("JOB ID", no_wrap=True)
    table.add_column("KIND")
    table.add_column("STATUS")
    table.add_column("PROGRESS", justify="right")
    table.add_column("SUBMITTED (UTC)", no_wrap=True)
    table.add_column("DURATION", justify="right")
    for record in records:
        table.add_row(
            record.job_id,
            str(record.kind),
            status_text(record.status),
            f"{record.progress.percent:.0f}%",
            short_time(record.submitted_at),
            duration(record),
        )
    return table


def markdown_of(result: Any) -> str | None:
    """The Markdown report inside a result, when it has one."""
    if isinstance(result, dict):
        for name in MARKDOWN_FIELDS:
            if isinstance(result.get(name), str):
                return str(result[name])
    return None


def print_result(console: Console, result: Any) -> None:
    """A result: its Markdown report rendered, else text as is, else indented JSON."""
    report = markdown_of(result)
    if report is not None:
        console.print(Markdown(report))
    elif isinstance(result, str):
        console.print(result, markup=False, highlight=False)
    else:
        console.print_json(json.dumps(result, ensure_ascii=False, default=str))


def notification_panel(note: Notification) -> Panel:
    """One notification: the job message's fields, titled by what SNS put on the envelope."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in note.message.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(key, shown)
    envelope = note.envelope
    title = envelope.get("Subject") or f"{note.message.get('status', '?')} notification"
    subtitle = f"SNS {envelope.get('Type', '?')} {envelope.get('MessageId', '')} at " + str(
        envelope.get("Timestamp", "?")
    )
    return Panel(Group(table), title=str(title), subtitle=subtitle, expand=False)
