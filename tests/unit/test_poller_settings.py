"""The poller's settings: required names, defaults, validation that names the fix."""

from __future__ import annotations

import pytest

from jobpoller.events import job_ids_of
from jobpoller.settings import PollerSettings, PollerSettingsError

REQUIRED = {
    "JOBS_TABLE": "t",
    "RESULTS_BUCKET": "b",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:1:x",
    "AGENT_RUNTIME_ARN": "arn:aws:bedrock-agentcore:us-east-1:1:runtime/x",
}


def test_defaults_fit_the_idle_window() -> None:
    settings = PollerSettings.from_env(REQUIRED)
    assert settings.max_poll_failures == 5
    assert settings.lease_s >= 2 * settings.read_timeout_s
    assert settings.overdue_after_s < 900


def test_environment_round_trips() -> None:
    settings = PollerSettings.from_env({**REQUIRED, "POLLER_CONCURRENCY": "4"})
    assert PollerSettings.from_env(settings.environment) == settings


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_missing_required_name_is_named(name: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != name}
    with pytest.raises(PollerSettingsError, match=name):
        PollerSettings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POLLER_CONCURRENCY", "0"),
        ("POLLER_READ_TIMEOUT_S", "soon"),
        ("POLLER_LEASE_S", "5"),
        ("POLLER_EMAIL_RESULT_PREVIEW", "maybe"),
    ],
)
def test_bad_knob_is_named(name: str, value: str) -> None:
    with pytest.raises(PollerSettingsError, match=name):
        PollerSettings.from_env({**REQUIRED, name: value})


def test_email_result_preview_is_off_unless_switched_on() -> None:
    assert PollerSettings.from_env(REQUIRED).email_result_preview is False
    on = PollerSettings.from_env({**REQUIRED, "POLLER_EMAIL_RESULT_PREVIEW": "1"})
    assert on.email_result_preview is True
    assert PollerSettings.from_env(on.environment) == on


def test_events_name_jobs_or_ask_for_a_tick() -> None:
    assert job_ids_of({"source": "aws.scheduler"}) is None
    assert job_ids_of({"job_ids": ["a", "b", 3]}) == ["a", "b"]
    assert job_ids_of({"job_id": "a"}) == ["a"]
    assert job_ids_of({"Records": [{"body": '{"job_id": "a"}'}, {"body": "nope"}]}) == ["a"]
