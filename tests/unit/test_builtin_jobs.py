"""The project's own jobs on their own: input validation and the work each does, offline."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from agentjobs.agent import JobFailed, JobStopped
from agentjobs.agent.settings import AgentSettings
from agentjobs.limits import (
    DEFAULT_MAX_JOBS_PER_SESSION,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_PROMPT_BYTES,
    MAX_TITLE_CHARS,
)
from agentjobs.protocol import ErrorCode, ProtocolError, encode_json
from builtin_jobs import analyst as agent_kind
from builtin_jobs import data_report, synthetic
from builtin_jobs.settings import (
    DEFAULT_MODEL_READ_TIMEOUT_S,
    MODEL_READ_TIMEOUT_ENV,
    SCRIPTED_MODEL_ENV,
    JobSettings,
)
from main import app


@dataclass
class RecordingContext:
    """A JobContext that records progress and can be told to stop."""

    reports: list[tuple[float, str]] = field(default_factory=list)
    slept: float = 0.0
    stop_after_reports: int | None = None
    job_id: str = "0" * 32
    session_id: str = "unit-test-session-" + "0" * 20
    attempt: int = 1
    resumed_state: Any = None
    checkpoints: list[Any] = field(default_factory=list)

    def checkpoint(self, state: Any) -> None:
        self.checkpoints.append(state)

    def progress(self, percent: float, message: str) -> None:
        self.reports.append((percent, message))

    def sleep(self, seconds: float) -> None:
        self.check_stop()
        self.slept += seconds

    def check_stop(self) -> None:
        if self.stop_after_reports is not None and len(self.reports) >= self.stop_after_reports:
            raise JobStopped


def parse_input(kind: str, job_input: dict[str, Any]) -> Any:
    """The job's validated parameters, as the project's agent declares the job."""
    return app.jobs[kind].parse(job_input)


def _invalid(kind: str, job_input: dict[str, Any]) -> str:
    with pytest.raises(ProtocolError) as caught:
        parse_input(kind, job_input)
    assert caught.value.code == ErrorCode.INVALID_INPUT
    return caught.value.message


# -- synthetic ----------------------------------------------------------------------------


def test_synthetic_defaults() -> None:
    assert parse_input("synthetic", {}) == synthetic.SyntheticInput()


@pytest.mark.parametrize(
    ("job_input", "says"),
    [
        ({"seconds": -1}, "'input.seconds'"),
        ({"seconds": "5"}, "'input.seconds'"),
        ({"seconds": True}, "'input.seconds'"),
        ({"seconds": 10**9}, "'input.seconds'"),
        ({"cpu": "yes"}, "'input.cpu'"),
        ({"fail": 3}, "'input.fail'"),
        ({"fail": ""}, "'input.fail'"),
        ({"fail": "   "}, "'input.fail'"),
        ({"result_bytes": 1.5}, "'input.result_bytes'"),
        ({"result_bytes": -1}, "'input.result_bytes'"),
        ({"sec": 1}, "'input.sec'"),
    ],
)
def test_synthetic_refuses_bad_input(job_input: dict[str, Any], says: str) -> None:
    assert says in _invalid("synthetic", job_input)


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
        synthetic.run_synthetic(synthetic.SyntheticInput(seconds=2, fail="out of cheese"), context)
    assert len(context.reports) == synthetic.PROGRESS_STEPS
    assert context.reports[-1][0] == 100.0
    assert context.slept == pytest.approx(2.0)


def test_synthetic_stops_when_told() -> None:
    context = RecordingContext(stop_after_reports=3)
    with pytest.raises(JobStopped):
        synthetic.run_synthetic(synthetic.SyntheticInput(seconds=100), context)
    assert len(context.reports) == 3


def test_cpu_work_runs_in_a_child_and_sleeping_work_does_not() -> None:
    spec = app.jobs["synthetic"]
    assert spec.in_child(synthetic.SyntheticInput(cpu=True))
    assert not spec.in_child(synthetic.SyntheticInput(cpu=False))
    assert app.jobs["data_report"].in_child(None)
    assert app.jobs["agent"].in_child(None)


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
    assert "exactly one" in _invalid("data_report", {})
    assert "exactly one" in _invalid("data_report", {"csv": "a\n1", "csv_uri": "s3://b/k"})
    assert "s3://" in _invalid("data_report", {"csv_uri": "https://example.com/a.csv"})
    assert "s3://" in _invalid("data_report", {"csv_uri": "s3://bucket-only"})
    assert "'input.csv'" in _invalid("data_report", {"csv": "  "})
    assert "top_values" in _invalid("data_report", {"csv": "a\n1", "top_values": 0})


def test_data_report_profiles_types_missing_values_and_outliers() -> None:
    context = RecordingContext()
    params = parse_input("data_report", {"csv": SALES, "title": "Sales", "top_values": 2})
    result = data_report.run_data_report(params, context)
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
    assert parse_input("agent", {"prompt": "hi"}) == agent_kind.AnalystInput(prompt="hi", steps=3)
    assert "prompt" in _invalid("agent", {})
    assert "prompt" in _invalid("agent", {"prompt": "   "})
    assert "steps" in _invalid("agent", {"prompt": "hi", "steps": 0})
    assert "steps" in _invalid("agent", {"prompt": "hi", "steps": 9})
    assert "temperature" in _invalid("agent", {"prompt": "hi", "temperature": 1})


def test_agent_turns_are_plan_steps_answer() -> None:
    turns = agent_kind.step_prompts(agent_kind.AnalystInput(prompt="do it", steps=2))
    assert [name for name, _ in turns] == ["plan", "step 1", "step 2", "answer"]
    assert "do it" in turns[0][1]


def test_agent_runs_offline_with_the_scripted_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCRIPTED_MODEL_ENV, "1")
    context = RecordingContext()
    result = agent_kind.run_analyst(
        agent_kind.AnalystInput(prompt="Compare two queues", steps=2), context
    )
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
        agent_kind.run_analyst(agent_kind.AnalystInput(prompt="x"), RecordingContext())


# -- settings -----------------------------------------------------------------------------


def test_settings_from_env() -> None:
    settings = AgentSettings.from_env(
        {"JOBS_TABLE": "t", "RESULTS_BUCKET": "b", "MODEL_ID": "m", "RESULT_RETENTION_DAYS": "7"}
    )
    assert settings == AgentSettings("t", "b", 7)
    assert AgentSettings.from_env({}) == AgentSettings(None, None, 30)


def test_job_settings_from_env() -> None:
    settings = JobSettings.from_env({"MODEL_ID": "m", SCRIPTED_MODEL_ENV: "1"})
    assert settings.model_id == "m" and settings.scripted_model
    assert settings.model_read_timeout_s == DEFAULT_MODEL_READ_TIMEOUT_S
    assert JobSettings.from_env({MODEL_READ_TIMEOUT_ENV: "1800"}).model_read_timeout_s == 1800


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf", "3601"])
def test_job_settings_refuse_a_bad_model_read_timeout(value: str) -> None:
    with pytest.raises(ValueError, match=MODEL_READ_TIMEOUT_ENV):
        JobSettings.from_env({MODEL_READ_TIMEOUT_ENV: value})


def test_the_bedrock_model_gets_the_read_timeout_setting() -> None:
    model = agent_kind.bedrock_model("anthropic.claude-test", 1234.0)
    assert model.client.meta.config.read_timeout == 1234.0


@pytest.mark.parametrize("value", ["0", "-3", "thirty", "1.5"])
def test_settings_refuse_a_bad_retention(value: str) -> None:
    with pytest.raises(ValueError, match="RESULT_RETENTION_DAYS"):
        AgentSettings.from_env({"RESULT_RETENTION_DAYS": value})


def test_the_agent_job_is_unavailable_without_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCRIPTED_MODEL_ENV, raising=False)
    monkeypatch.delenv("MODEL_ID", raising=False)
    assert "MODEL_ID" in (app.jobs["agent"].unavailable() or "")
    monkeypatch.setenv("MODEL_ID", "m")
    assert app.jobs["agent"].unavailable() is None


# -- what data_report may read ------------------------------------------------------------


@pytest.fixture
def results_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULTS_BUCKET", "my-results")


def test_data_report_reads_only_the_results_buckets_input_prefix(results_bucket: None) -> None:
    uri = "s3://my-results/inputs/team/sales.csv"
    parsed = parse_input("data_report", {"csv_uri": uri})
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
def test_data_report_refuses_any_other_uri_saying_what_is_allowed(
    results_bucket: None, uri: str
) -> None:
    message = _invalid("data_report", {"csv_uri": uri})
    assert "'input.csv_uri'" in message
    assert "s3://my-results/inputs/" in message


def test_data_report_without_a_results_bucket_reads_no_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESULTS_BUCKET", raising=False)
    message = _invalid("data_report", {"csv_uri": "s3://b/inputs/a.csv"})
    assert "'csv'" in message


def test_data_report_refusal_never_copies_a_long_uri(results_bucket: None) -> None:
    uri = "s3://my-results/" + "k" * 2000
    message = _invalid("data_report", {"csv_uri": uri})
    assert "k" * 100 not in message
    assert "1024 bytes" in message


def test_text_fields_are_bounded_by_the_shared_limits() -> None:
    assert f"{MAX_TITLE_CHARS}" in _invalid(
        "data_report", {"csv": "a\n1", "title": "t" * (MAX_TITLE_CHARS + 1)}
    )
    assert f"{MAX_ERROR_MESSAGE_CHARS}" in _invalid(
        "synthetic", {"fail": "f" * (MAX_ERROR_MESSAGE_CHARS + 1)}
    )
    assert parse_input("synthetic", {"fail": "f" * MAX_ERROR_MESSAGE_CHARS}).fail
    assert f"{MAX_PROMPT_BYTES}" in _invalid(
        "agent", {"prompt": "\u00e9" * (MAX_PROMPT_BYTES // 2 + 1)}
    )


def test_settings_read_the_per_session_job_cap() -> None:
    assert AgentSettings.from_env({}).max_jobs_per_session == DEFAULT_MAX_JOBS_PER_SESSION
    assert AgentSettings.from_env({"MAX_JOBS_PER_SESSION": "3"}).max_jobs_per_session == 3
    for bad in ("0", "-1", "many", "2.5"):
        with pytest.raises(ValueError, match="MAX_JOBS_PER_SESSION"):
            AgentSettings.from_env({"MAX_JOBS_PER_SESSION": bad})
