"""How records, pages, results and notifications look: rich for people, JSON for scripts.

Job-derived text is never Rich markup: it goes into `Text` objects, cleaned of escape
sequences and control characters (`terminal_text`), so it prints as the job wrote it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.highlighter import JSONHighlighter
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agentjobs.cli.inbox import ReceivedNotification
from agentjobs.cli.terminal_text import escape_json_text, printable, printable_value
from agentjobs.history import Event
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


Part = str | tuple[str, str] | Text


def print_json(value: Any) -> None:
    """One JSON document on stdout; plain print so that nothing wraps or colours it. The
    value is exact; what a terminal would obey is written as JSON \\u escapes."""
    print(escape_json_text(json.dumps(value, indent=2, ensure_ascii=False, default=str)))


def text(value: object, style: str = "") -> Text:
    """Job-derived text as a `Text`: shown as it is, never read as markup."""
    return Text(printable(str(value)), style=style)


def line(*parts: Part) -> Text:
    """One line from plain strings, (string, style) pairs and `Text`s; no part is markup."""
    assembled = Text()
    for part in parts:
        if isinstance(part, Text):
            assembled.append_text(part)
        elif isinstance(part, tuple):
            assembled.append(printable(part[0]), style=part[1])
        else:
            assembled.append(printable(part))
    return assembled


def record_json(record: JobRecord) -> dict[str, Any]:
    """A record for `--json`: the agent's status answer plus what the poller added."""
    answer = record.to_answer(with_outcome=False)
    answer["updated_at"] = record.updated_at
    for name in (
        "run_session_id",
        "result_uri",
        "notified_at",
        "session_stopped_at",
        "client_token",
    ):
        value = getattr(record, name)
        if value is not None:
            answer[name] = value
    return answer


def status_text(status: JobStatus | str) -> Text:
    """The status in its colour (a status this CLI does not know, uncoloured)."""
    style = STATUS_STYLES.get(status, "") if isinstance(status, JobStatus) else ""
    return text(status, style)


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
    table.add_row("job", text(record.job_id))
    table.add_row("kind", text(record.kind))
    table.add_row("status", status_text(record.status))
    progress = f"{record.progress.percent:.0f}%"
    if record.progress.message:
        progress += f"  {record.progress.message}"
    table.add_row("progress", text(progress))
    table.add_row("session", text(record.session_id))
    if record.run_session_id and record.run_session_id != record.session_id:
        table.add_row("running in", text(record.run_session_id))
    if record.max_attempts > 1:
        table.add_row("attempt", text(f"{record.attempt} of {record.max_attempts}"))
    if record.checkpoint_at:
        table.add_row("checkpoint", text(short_time(record.checkpoint_at)))
    table.add_row("submitted", text(short_time(record.submitted_at)))
    table.add_row("finished", text(short_time(record.finished_at)))
    table.add_row("duration", text(duration(record)))
    if record.error is not None:
        table.add_row("error", line((record.error.code, "red"), ": ", record.error.message))
    if record.result_uri:
        table.add_row("result", text(record.result_uri))
    if record.notified_at:
        table.add_row("notified", text(short_time(record.notified_at)))
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
            text(record.job_id),
            text(record.kind),
            status_text(record.status),
            text(f"{record.progress.percent:.0f}%"),
            text(short_time(record.submitted_at)),
            text(duration(record)),
        )
    return table


SHORT_SESSION_CHARS = 12
"""A session id's tail: the CLI's ids share their head, a resumed session's tail says "-r2"."""


def short_session(session_id: str | None) -> str:
    """The end of a session id, enough to tell a job's sessions apart."""
    if not session_id:
        return "-"
    if len(session_id) <= SHORT_SESSION_CHARS + 3:
        return session_id
    return "..." + session_id[-SHORT_SESSION_CHARS:]


def event_time(at: str) -> str:
    """An event's time to the millisecond (a job's first events come within one second);
    a time that does not parse is shown as stored."""
    try:
        moment = parse_time(at)
    except ValueError:
        return at
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def events_table(events: list[Event]) -> Table:
    """A job's history, oldest first: one row an event."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("TIME (UTC)", no_wrap=True)
    table.add_column("EVENT", no_wrap=True)
    table.add_column("ATTEMPT", justify="right")
    table.add_column("SESSION", no_wrap=True)
    table.add_column("DETAIL", overflow="fold")
    for event in events:
        detail = "  ".join(f"{name}={_detail_value(value)}" for name, value in event.detail.items())
        table.add_row(
            text(event_time(event.at)),
            text(event.type),
            text(event.attempt),
            text(short_session(event.session_id)),
            text(detail),
        )
    return table


def _detail_value(value: object) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return str(value)


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
        # A link shows its target: a report must not hide where "the data" points.
        console.print(Markdown(printable(report, multiline=True), hyperlinks=False))
    elif isinstance(result, str):
        console.print(Text(printable(result, multiline=True)))
    else:
        dumped = json.dumps(printable_value(result), indent=2, ensure_ascii=False, default=str)
        shown = JSONHighlighter()(escape_json_text(dumped))
        shown.no_wrap = True
        console.print(shown)


def notification_panel(note: ReceivedNotification) -> Panel:
    """One notification: the job message's fields, titled by what SNS put on the envelope."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in note.message.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(text(key), text(shown))
    envelope = note.envelope
    title = envelope.get("Subject") or f"{note.message.get('status', '?')} notification"
    subtitle = f"SNS {envelope.get('Type', '?')} {envelope.get('MessageId', '')} at " + str(
        envelope.get("Timestamp", "?")
    )
    return Panel(Group(table), title=text(title), subtitle=text(subtitle), expand=False)
