"""The `data_report` job: profile a CSV offline and return a Markdown report and its figures."""

from __future__ import annotations

import csv
import io
import logging
import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from agentjobs.agent import JobContext, JobFailed
from agentjobs.limits import MAX_TITLE_CHARS
from agentjobs.protocol import S3Location, parse_s3_uri
from agentjobs.schema import INPUT_PREFIX
from builtin_jobs.settings import JobSettings

log = logging.getLogger(__name__)

MAX_CSV_BYTES = 200_000_000
"""Largest CSV read from S3; the profile holds every column in memory."""

UNREADABLE_MESSAGE = (
    "the object named by csv_uri could not be read: it does not exist, or the agent may not read it"
)
"""One message for every S3 refusal: telling NoSuchKey from AccessDenied would let a caller
probe which objects exist."""

MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})
_BOOLEANS = frozenset({"true", "false", "yes", "no"})
_MAX_OUTLIER_EXAMPLES = 5
_MAX_CELL_CHARS_SHOWN = 40

Title = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE_CHARS)]


class DataReportInput(BaseModel):
    """A CSV given inline (`csv`) or by `csv_uri` (s3://bucket/key), and report options."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    csv_text: str | None = Field(default=None, alias="csv")
    csv_uri: str | None = None
    title: Title | None = None
    top_values: int = Field(default=5, ge=1, le=50)

    @field_validator("csv_text")
    @classmethod
    def _csv_has_text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be non-empty CSV text with a header row")
        return value

    @field_validator("csv_uri")
    @classmethod
    def _uri_is_readable(cls, value: str | None) -> str | None:
        if value is not None:
            check_input_uri(value, JobSettings.from_env().results_bucket)
        return value

    @field_validator("title")
    @classmethod
    def _title_has_text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be null or a non-empty title")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, data: Any) -> Any:
        # Before the fields: a caller who gave both, or neither, is told that first.
        if isinstance(data, dict) and (data.get("csv") is None) == (data.get("csv_uri") is None):
            raise ValueError("give exactly one of 'csv' (the CSV text) and 'csv_uri' (s3://...)")
        return data

    @property
    def report_title(self) -> str:
        """The title the report is written under."""
        return self.title or "Data report"


class InputRefusedError(ValueError):
    """A csv_uri the job will not read; the message says which URIs it reads."""


def check_input_uri(uri: object, results_bucket: str | None) -> S3Location:
    """The location of a caller's `csv_uri`, which must be an S3 URI under
    s3://<results bucket>/inputs/: the only objects the agent reads on a caller's behalf."""
    if not isinstance(uri, str):
        raise InputRefusedError(f"must be an s3:// URI; {_allowed_uris(results_bucket)}")
    try:
        location = parse_s3_uri(uri)
    except ValueError as exc:
        raise InputRefusedError(f"{exc}; {_allowed_uris(results_bucket)}") from None
    inside = location.key.startswith(INPUT_PREFIX) and len(location.key) > len(INPUT_PREFIX)
    if results_bucket is None or location.bucket != results_bucket or not inside:
        raise InputRefusedError(
            f"names an object the agent does not read; {_allowed_uris(results_bucket)}"
        )
    return location


def _allowed_uris(results_bucket: str | None) -> str:
    if results_bucket is None:
        return (
            "this agent has no results bucket (RESULTS_BUCKET), so it reads no csv_uri: "
            "pass the CSV inline as 'csv'"
        )
    return f"it must name an object under s3://{results_bucket}/{INPUT_PREFIX} (upload it there)"


def run_data_report(params: DataReportInput, context: JobContext) -> dict[str, Any]:
    """Load, parse, profile each column, render; progress after every step."""
    context.progress(2.0, "loading the CSV")
    text = params.csv_text if params.csv_text is not None else _read_s3(params.csv_uri or "")
    context.progress(10.0, "parsing rows")
    header, rows = parse_csv(text)
    context.progress(25.0, f"profiling {len(header)} columns over {len(rows)} rows")

    def on_column(done: int, name: str) -> None:
        context.progress(25.0 + 65.0 * done / len(header), f"profiled column {done}: {name}")

    figures = profile(header, rows, params.top_values, on_column)
    context.progress(95.0, "writing the report")
    title = params.report_title
    return {"title": title, "markdown": render_markdown(title, figures), **figures}


def _read_s3(uri: str) -> str:
    # Deferred: only a CSV from S3 needs boto3, and the child pays its import only then.
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    # parse() checked the URI; the messages below never repeat it (it may be 1 KB long).
    location = parse_s3_uri(uri)
    try:
        s3 = boto3.session.Session().client("s3", config=Config(**_S3_CLIENT_CONFIG))
        answer = s3.get_object(Bucket=location.bucket, Key=location.key)
        if int(answer.get("ContentLength", 0)) > MAX_CSV_BYTES:
            raise JobFailed(f"the object named by csv_uri is larger than {MAX_CSV_BYTES} bytes")
        body: bytes = answer["Body"].read()
    except ClientError as exc:
        # The operator sees S3's code in the log; the caller one message for all of them.
        log.warning("csv_uri not read: S3 answered %s", exc.response.get("Error", {}).get("Code"))
        raise JobFailed(UNREADABLE_MESSAGE) from exc
    except BotoCoreError as exc:
        raise JobFailed("S3 could not be reached to read csv_uri; retry later") from exc
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JobFailed("the object named by csv_uri is not UTF-8 text") from exc


_S3_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 3,
    "read_timeout": 10,
    "retries": {"mode": "standard", "max_attempts": 3},
}


def parse_csv(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows; JobFailed when there is no header or no data."""
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:20_000], delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    try:
        rows = [
            row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)
        ]
    except csv.Error as exc:
        raise JobFailed(f"the CSV could not be parsed: {exc}") from exc
    if len(rows) < 2:
        raise JobFailed("the CSV needs a header row and at least one data row")
    header = [name.strip() or f"column_{i + 1}" for i, name in enumerate(rows[0])]
    return header, rows[1:]


def profile(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    top_n: int,
    on_column: Callable[[int, str], None] | None = None,
) -> dict[str, Any]:
    """The figures: row and column counts, and for each column its type, counts, missing
    values, top values, and for numeric columns statistics and IQR outliers."""
    columns = []
    for index, name in enumerate(header):
        cells = [row[index].strip() if index < len(row) else "" for row in rows]
        columns.append(profile_column(name, cells, top_n))
        if on_column is not None:
            on_column(index + 1, name)
    ragged = sum(1 for row in rows if len(row) != len(header))
    return {
        "rows": len(rows),
        "column_count": len(header),
        "ragged_rows": ragged,
        "columns": columns,
    }


def profile_column(name: str, cells: Sequence[str], top_n: int) -> dict[str, Any]:
    """One column's figures."""
    present = [c for c in cells if c.lower() not in MISSING_MARKERS]
    kind = infer_type(present)
    counts = Counter(present)
    figures: dict[str, Any] = {
        "name": name,
        "type": kind,
        "count": len(present),
        "missing": len(cells) - len(present),
        "missing_pct": round(100.0 * (len(cells) - len(present)) / len(cells), 2) if cells else 0.0,
        "distinct": len(counts),
        "top_values": [
            {"value": value, "count": count} for value, count in counts.most_common(top_n)
        ],
    }
    if kind in {"integer", "number"} and present:
        figures["stats"], figures["outliers"] = numeric_figures([float(c) for c in present])
    return figures


def infer_type(values: Sequence[str]) -> str:
    """integer, number, boolean, date or text: the narrowest type every value fits."""
    if not values:
        return "empty"
    checks: list[tuple[str, Callable[[str], bool]]] = [
        ("integer", _is_int),
        ("number", _is_number),
        ("boolean", lambda v: v.lower() in _BOOLEANS),
        ("date", _is_date),
    ]
    for name, check in checks:
        if all(check(v) for v in values):
            return name
    return "text"


def numeric_figures(values: list[float]) -> tuple[dict[str, float], dict[str, Any]]:
    """Statistics and the values outside Tukey's fences (1.5 IQR beyond the quartiles)."""
    ordered = sorted(values)
    if len(ordered) >= 2:
        q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        stdev = statistics.stdev(ordered)
    else:
        q1 = median = q3 = ordered[0]
        stdev = 0.0
    stats = {
        "min": ordered[0],
        "max": ordered[-1],
        "mean": _round(statistics.fmean(ordered)),
        "median": _round(median),
        "stdev": _round(stdev),
        "q1": _round(q1),
        "q3": _round(q3),
    }
    spread = q3 - q1
    low, high = q1 - 1.5 * spread, q3 + 1.5 * spread
    outside = [v for v in values if v < low or v > high]
    outliers = {
        "method": "IQR (1.5 x interquartile range beyond Q1/Q3)",
        "low_fence": _round(low),
        "high_fence": _round(high),
        "count": len(outside),
        "examples": sorted(outside, key=lambda v: abs(v - median), reverse=True)[
            :_MAX_OUTLIER_EXAMPLES
        ],
    }
    return stats, outliers


def render_markdown(title: str, figures: dict[str, Any]) -> str:
    """The report a person reads: an overview table, then one section per column."""
    lines = [
        f"# {title}",
        "",
        f"{figures['rows']} rows, {figures['column_count']} columns"
        + (
            f", {figures['ragged_rows']} rows with a wrong number of cells"
            if figures["ragged_rows"]
            else ""
        )
        + ".",
        "",
        "| column | type | count | missing | distinct |",
        "|---|---|---|---|---|",
    ]
    for column in figures["columns"]:
        lines.append(
            f"| {_cell(column['name'])} | {column['type']} | {column['count']} | "
            f"{column['missing']} ({column['missing_pct']}%) | {column['distinct']} |"
        )
    for column in figures["columns"]:
        lines += ["", f"## {_cell(column['name'])}", ""]
        if "stats" in column:
            s = column["stats"]
            lines.append(
                f"min {s['min']:g}, Q1 {s['q1']:g}, median {s['median']:g}, "
                f"Q3 {s['q3']:g}, max {s['max']:g}; mean {s['mean']:g}, stdev {s['stdev']:g}."
            )
            out = column["outliers"]
            if out["count"]:
                shown = ", ".join(f"{v:g}" for v in out["examples"])
                lines.append(
                    f"{out['count']} outlier(s) outside [{out['low_fence']:g}, "
                    f"{out['high_fence']:g}] (IQR rule), e.g. {shown}."
                )
            else:
                lines.append("No outliers by the IQR rule.")
        top = ", ".join(f"`{_cell(t['value'])}` ({t['count']})" for t in column["top_values"])
        lines.append(f"Top values: {top or 'none'}.")
    return "\n".join(lines) + "\n"


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _round(value: float) -> float:
    return round(value, 6)


def _cell(value: str) -> str:
    shown = (
        value if len(value) <= _MAX_CELL_CHARS_SHOWN else value[: _MAX_CELL_CHARS_SHOWN - 3] + "..."
    )
    return shown.replace("|", "\\|").replace("`", "'").replace("\n", " ")
