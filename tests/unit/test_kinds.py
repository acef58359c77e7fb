"""The job kinds on their own: input validation and the work each does, offline."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from jobagent.kinds import KINDS, JobFailed, JobStopped, data_report, parse_input, synthetic
from jobagent.kinds import agent as agent_kind
from jobagent.settings import SCRIPTED_MODEL_ENV, Settings

from agentjobs.limits import (
    DEFAULT_MAX_JOBS_PER_SESSION,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_PROMPT_BYTES,
    MAX_TITLE_CHARS,
)
from agentjobs.protocol import ErrorCode, JobKind, ProtocolError, encode_json


@dataclass
class RecordingContext:
    """A JobContext that records progress and can be told to stop."""

    reports: list[tuple[float, str]] = field(default_factory=list)
    slept: float = 0.0
    stop_after_reports: int | None = None

    def report(self, percent: float, message: str) -> None:
        self.reports.append((percent, message))

    def sleep(self, seconds: float) -> None:
        self.check_stop()
        self.slept += seconds

    def check_stop(self) -> None:
        if self.stop_after_reports is not None and len(self.reports) >= self.stop_after_reports:
            raise JobStopped


def _invalid(kind: JobKind, job_input: dict[str, Any]) -> str:
    with pytest.raises(ProtocolError) as caught:
        parse_input(kind, job_input)
    assert caught.value.code == ErrorCode.INVALID_INPUT
    return caught.value.message


# -- synthetic ----------------------------------------------------------------------------


def test_synthetic_defaults() -> None:
    assert parse_input(JobKind.SYNTHETIC, {}) == synthetic.SyntheticInput()


@pytest.mark.parametrize(
    ("job_input", "says"),
    [
        ({"seconds": -1}, "'seconds'"),
        ({"seconds": "5"}, "'seconds'"),
        ({"seconds": True}, "'seconds'"),
        ({"seconds": 10**9}, "'seconds'"),
        ({"cpu": "yes"}, "'cpu'"),
        ({"fail": 3}, "'fail'"),
        ({"fail": ""}, "'fail'"),
        ({"result_bytes": 1.5}, "'result_bytes'"),
        ({"result_bytes": -1}, "'result_bytes'"),
        ({"sec": 1}, "sec"),
    ],
)
def test_synthetic_refuses_bad_input(job_input: dict[str, Any], says: str) -> None:
    assert says in _invalid(JobKind.SYNTHETIC, job_input)


@pytest.mark.parametrize("size", [0, 10, 100, 5000, 70_000])
def test_synthetic_result_has_about_the_asked_size(size: int) -> None:
    def encoded_size(result_bytes: int) -> int:
        result = synthetic.sized_result(synthetic.SyntheticInput(result_bytes=result_bytes))
        return len(encode_json(result).encode())

    frame = encoded_size(0)
    assert encoded_size(size) == max(size, frame)


def test_synthetic_reports_progress_in_steps_and_fails_when_asked() -> None:
    context = RecordingContext()
    with pytest.raises(JobFailed, match="out of cheese"):
        synthetic.run(synthetic.SyntheticInput(seconds=2, fail="out of cheese"), context)
    assert len(context.reports) == synthetic.PROGRESS_STEPS
    assert context.reports[-1][0] == 100.0
    assert context.slept == pytest.approx(2.0)


def test_synthetic_stops_when_told() -> None:
    context = RecordingContext(stop_after_reports=3)
    with pytest.raises(JobStopped):
        synthetic.run(synthetic.SyntheticInput(seconds=100), context)
    assert len(context.reports) == 3


def test_cpu_work_runs_in_a_child_and_sleeping_work_does_not() -> None:
    spec = KINDS[JobKind.SYNTHETIC]
    assert spec.in_child(synthetic.SyntheticInput(cpu=True))
    assert not spec.in_child(synthetic.SyntheticInput(cpu=False))
    assert KINDS[JobKind.DATA_REPORT].in_child(None)
    assert KINDS[JobKind.AGENT].in_child(None)


# -- data_report --------------------------------------------------------------------------

SALES = """region,units,price,opened,active,note
north,10,2.5,2024-01-03,true,first
south,12,2.75,2024-02-11,false,
east,11,NA,2024-03-09,yes,"has, comma"
west,9,3.0,2024-04-01,no,
north,250,2.5,2024-05-05,true,big order
south,13,2.6,2024-06-30,false,
"""


def test_data_report_input_needs_exactly_one_source() -> None:
    assert "exactly one" in _invalid(JobKind.DATA_REPORT, {})
    assert "exactly one" in _invalid(JobKind.DATA_REPORT, {"csv": "a\n1", "csv_uri": "s3://b/k"})
    assert "s3://" in _invalid(JobKind.DATA_REPORT, {"csv_uri": "https://example.com/a.csv"})
    assert "s3://" in _invalid(JobKind.DATA_REPORT, {"csv_uri": "s3://bucket-only"})
    assert "'csv'" in _invalid(JobKind.DATA_REPORT, {"csv": "  "})
    assert "top_values" in _invalid(JobKind.DATA_REPORT, {"csv": "a\n1", "top_values": 0})


def test_data_report_profiles_types_missing_values_and_outliers() -> None:
    context = RecordingContext()
    params = parse_input(JobKind.DATA_REPORT, {"csv": SALES, "title": "Sales", "top_values": 2})
    result = data_report.run(params, context)
    columns = {c["name"]: c for c in result["columns"]}
    assert result["rows"] == 6
    assert result["column_count"] == 6
    assert {n: c["type"] for n, c in columns.items()} == {
        "region": "text",
        "units": "integer",
        "price": "number",
        "opened": "date",
        "active": "boolean",
        "note": "text",
    }
    assert columns["price"]["missing"] == 1
    assert columns["note"]["missing"] == 3
    assert columns["region"]["top_values"] == [
        {"value": "north", "count": 2},
        {"value": "south", "count": 2},
    ]
    assert columns["units"]["stats"]["max"] == 250
    assert columns["units"]["outliers"]["examples"] == [250.0]
    assert columns["price"]["outliers"]["count"] == 0
    assert result["markdown"].startswith("# Sales\n")
    assert "| units | integer | 6 | 0 (0.0%) | 6 |" in result["markdown"]
    assert "outlier(s)" in result["markdown"]
    percents = [p for p, _ in context.reports]
    assert percents == sorted(percents)
    assert len(context.reports) >= 6 + 3
    json.dumps(result, allow_nan=False)


def test_data_report_reads_semicolon_csv() -> None:
    header, rows = data_report.parse_csv("a;b\n1;2\n3;4\n")
    assert header == ["a", "b"]
    assert rows == [["1", "2"], ["3", "4"]]


@pytest.mark.parametrize("text", ["only,a,header\n", "\n\n"])
def test_data_report_without_data_rows_fails_clearly(text: str) -> None:
    with pytest.raises(JobFailed, match="header row and at least one data row"):
        data_report.parse_csv(text)


def test_numeric_figures_of_one_value() -> None:
    stats, outliers = data_report.numeric_figures([4.0])
    assert stats["min"] == stats["max"] == stats["median"] == 4.0
    assert stats["stdev"] == 0.0
    assert outliers["count"] == 0


def test_ragged_rows_are_counted_and_short_rows_are_missing_values() -> None:
    header, rows = data_report.parse_csv("a,b\n1,2\n3\n4,5,6\n")
    figures = data_report.profile(header, rows, 3)
    assert figures["ragged_rows"] == 2
    assert figures["columns"][1]["missing"] == 1


def test_markdown_escapes_table_breaking_cells() -> None:
    header, rows = data_report.parse_csv('name\n"a|b"\n"x`y"\n')
    markdown = data_report.render_markdown("T", data_report.profile(header, rows, 3))
    assert "a\\|b" in markdown
    assert "x'y" in markdown


# -- agent --------------------------------------------------------------------------------


def test_agent_input() -> None:
    assert parse_input(JobKind.AGENT, {"prompt": "hi"}) == agent_kind.AgentInput("hi", 3)
    assert "prompt" in _invalid(JobKind.AGENT, {})
    assert "prompt" in _invalid(JobKind.AGENT, {"prompt": "   "})
    assert "steps" in _invalid(JobKind.AGENT, {"prompt": "hi", "steps": 0})
    assert "steps" in _invalid(JobKind.AGENT, {"prompt": "hi", "steps": 9})
    assert "temperature" in _invalid(JobKind.AGENT, {"prompt": "hi", "temperature": 1})


def test_agent_turns_are_plan_steps_answer() -> None:
    turns = agent_kind.step_prompts(agent_kind.AgentInput("do it", 2))
    assert [name for name, _ in turns] == ["plan", "step 1", "step 2", "answer"]
    assert "do it" in turns[0][1]


def test_agent_runs_offline_with_the_scripted_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCRIPTED_MODEL_ENV, "1")
    context = RecordingContext()
    result = agent_kind.run(agent_kind.AgentInput("Compare two queues", 2), context)
    assert result["model_id"] == "scripted-offline-model"
    assert [s["step"] for s in result["steps"]] == ["plan", "step 1", "step 2"]
    assert "Compare two queues" in result["steps"][0]["text"]
    assert result["answer"].startswith("Scripted answer 4")
    assert result["usage"]["input_tokens"] > 0
    assert [m for _, m in context.reports][-1] == "finished answer"


def test_agent_without_model_id_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCRIPTED_MODEL_ENV, raising=False)
    monkeypatch.delenv("MODEL_ID", raising=False)
    with pytest.raises(JobFailed, match="MODEL_ID"):
        agent_kind.run(agent_kind.AgentInput("x"), RecordingContext())


# -- settings -----------------------------------------------------------------------------


def test_settings_from_env() -> None:
    settings = Settings.from_env(
        {"JOBS_TABLE": "t", "RESULTS_BUCKET": "b", "MODEL_ID": "m", "RESULT_RETENTION_DAYS": "7"}
    )
    assert settings == Settings("t", "b", "m", 7, False)
    assert Settings.from_env({}) == Settings(None, None, None, 30, False)
    assert Settings.from_env({SCRIPTED_MODEL_ENV: "1"}).scripted_model


@pytest.mark.parametrize("value", ["0", "-3", "thirty", "1.5"])
def test_settings_refuse_a_bad_retention(value: str) -> None:
    with pytest.raises(ValueError, match="RESULT_RETENTION_DAYS"):
        Settings.from_env({"RESULT_RETENTION_DAYS": value})


# -- what data_report may read ------------------------------------------------------------

BUCKET_SETTINGS = Settings(jobs_table="t", results_bucket="my-results", model_id=None)


def _invalid_with(kind: JobKind, job_input: dict[str, Any], settings: Settings) -> str:
    with pytest.raises(ProtocolError) as caught:
        parse_input(kind, job_input, settings)
    assert caught.value.code == ErrorCode.INVALID_INPUT
    return caught.value.message


def test_data_report_reads_only_the_results_buckets_input_prefix() -> None:
    uri = "s3://my-results/inputs/team/sales.csv"
    parsed = parse_input(JobKind.DATA_REPORT, {"csv_uri": uri}, BUCKET_SETTINGS)
    assert parsed.csv_uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "s3://other-bucket/inputs/sales.csv",
        "s3://my-results/jobs/0123/outcome.json",
        "s3://my-results/inputs",
        "s3://my-results/inputs/",
        "s3://my-results/sales.csv",
        "s3://my-results/inputs/../jobs/0123/outcome.json",
    ],
)
def test_data_report_refuses_any_other_uri_saying_what_is_allowed(uri: str) -> None:
    message = _invalid_with(JobKind.DATA_REPORT, {"csv_uri": uri}, BUCKET_SETTINGS)
    assert "'csv_uri'" in message
    assert "s3://my-results/inputs/" in message


def test_data_report_without_a_results_bucket_reads_no_uri() -> None:
    settings = Settings(jobs_table="t", results_bucket=None, model_id=None)
    message = _invalid_with(JobKind.DATA_REPORT, {"csv_uri": "s3://b/inputs/a.csv"}, settings)
    assert "'csv'" in message


def test_data_report_refusal_never_copies_a_long_uri() -> None:
    uri = "s3://my-results/" + "k" * 2000
    message = _invalid_with(JobKind.DATA_REPORT, {"csv_uri": uri}, BUCKET_SETTINGS)
    assert "k" * 100 not in message
    assert "1024 bytes" in message


def test_text_fields_are_bounded_by_the_shared_limits() -> None:
    assert f"{MAX_TITLE_CHARS}" in _invalid(
        JobKind.DATA_REPORT, {"csv": "a\n1", "title": "t" * (MAX_TITLE_CHARS + 1)}
    )
    assert f"{MAX_ERROR_MESSAGE_CHARS}" in _invalid(
        JobKind.SYNTHETIC, {"fail": "f" * (MAX_ERROR_MESSAGE_CHARS + 1)}
    )
    assert parse_input(JobKind.SYNTHETIC, {"fail": "f" * MAX_ERROR_MESSAGE_CHARS}).fail
    assert f"{MAX_PROMPT_BYTES}" in _invalid(
        JobKind.AGENT, {"prompt": "\u00e9" * (MAX_PROMPT_BYTES // 2 + 1)}
    )


def test_settings_read_the_per_session_job_cap() -> None:
    assert Settings.from_env({}).max_jobs_per_session == DEFAULT_MAX_JOBS_PER_SESSION
    assert Settings.from_env({"MAX_JOBS_PER_SESSION": "3"}).max_jobs_per_session == 3
    for bad in ("0", "-1", "many", "2.5"):
        with pytest.raises(ValueError, match="MAX_JOBS_PER_SESSION"):
            Settings.from_env({"MAX_JOBS_PER_SESSION": bad})
