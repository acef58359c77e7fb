"""Context validation: bad values stop the synth with one line naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agentjobs.model_ids import DEFAULT_MODEL_ID
from infra.bundling import PROJECT_ROOT
from infra.settings import DeploySettings, DeploySettingsError


def settings(**context: object) -> DeploySettings:
    return DeploySettings.from_context(context.get)


def error(**context: object) -> str:
    with pytest.raises(DeploySettingsError) as caught:
        settings(**context)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults() -> None:
    assert settings() == DeploySettings(
        notification_emails=(),
        poller_rate_minutes=1,
        idle_timeout_s=900,
        max_lifetime_s=28_800,
        model_id=DEFAULT_MODEL_ID,
        agent_artifact="code",
        result_retention_days=30,
        tracing=False,
        marketplace_product_id=None,
    )


def test_several_comma_separated_emails() -> None:
    parsed = settings(notificationEmail=" a@example.com,b.c@example.org ")
    assert parsed.notification_emails == ("a@example.com", "b.c@example.org")


@pytest.mark.parametrize("value", ["me", "me@example", "a@example.com,,b@example.com", "a b@x.io"])
def test_malformed_email_is_refused(value: str) -> None:
    assert error(notificationEmail=value).startswith("notificationEmail: ")


def test_duplicate_email_is_refused() -> None:
    assert error(notificationEmail="a@x.io,a@x.io").startswith("notificationEmail: ")


@pytest.mark.parametrize(
    ("value", "minutes"), [("1 minute", 1), ("2 minutes", 2), ("5m", 5), (7, 7)]
)
def test_poller_rate_forms(value: object, minutes: int) -> None:
    assert settings(pollerRate=value).poller_rate_minutes == minutes


@pytest.mark.parametrize("value", ["15 minutes", "20", "8 minutes", "0", "1 hour", "fast", "1.5"])
def test_poller_rate_that_cannot_poll_twice_per_idle_window_is_refused(value: str) -> None:
    message = error(pollerRate=value)
    assert message.startswith("pollerRate: ")
    assert "1 to 7 whole minutes" in message


def test_poller_rate_allowed_range_follows_the_idle_timeout() -> None:
    assert settings(pollerRate="14 minutes", idleTimeout=3600).poller_rate_minutes == 14
    assert error(pollerRate="15 minutes", idleTimeout=28_800).startswith("pollerRate: ")
    assert error(pollerRate="2 minutes", idleTimeout=180).startswith("pollerRate: ")
    assert error(idleTimeout=60).startswith("pollerRate: ")


def test_idle_timeout_above_max_lifetime_is_refused() -> None:
    message = error(idleTimeout=1800, maxLifetime=900)
    assert message.startswith("idleTimeout: ")
    assert "maxLifetime" in message


@pytest.mark.parametrize("name", ["idleTimeout", "maxLifetime"])
@pytest.mark.parametrize("value", [59, 28_801, "ten", "-5", True])
def test_lifecycle_values_out_of_range_are_refused(name: str, value: object) -> None:
    assert error(**{name: value}).startswith(f"{name}: ")


def test_unknown_artifact_kind_is_refused() -> None:
    assert settings(agentArtifact="docker").agent_artifact == "docker"
    message = error(agentArtifact="zip")
    assert message == "agentArtifact: 'zip' is unknown; allowed: code or docker"


@pytest.mark.parametrize("value", ["claude", "Foo Bar", "arn:aws:bedrock:us-east-1::x"])
def test_malformed_model_id_is_refused(value: str) -> None:
    assert error(modelId=value).startswith("modelId: ")


@pytest.mark.parametrize("value", ["0", "3651", "a week"])
def test_result_retention_out_of_range_is_refused(value: str) -> None:
    assert error(resultRetentionDays=value).startswith("resultRetentionDays: ")


@pytest.mark.parametrize(("value", "on"), [("true", True), ("false", False), (True, True)])
def test_tracing_is_true_or_false(value: object, on: bool) -> None:
    assert settings(tracing=value).tracing is on


@pytest.mark.parametrize("value", ["yes", "TRUE", "1", "on", "enabled"])
def test_tracing_other_than_true_or_false_is_refused(value: str) -> None:
    assert error(tracing=value) == f"tracing: {value!r} is not allowed; allowed: true or false"


def test_email_result_preview_is_off_unless_asked_for() -> None:
    assert settings().email_result_preview is False
    assert settings(emailResultPreview="true").email_result_preview is True
    assert error(emailResultPreview="yes") == (
        "emailResultPreview: 'yes' is not allowed; allowed: true or false"
    )


def test_marketplace_product_id_is_a_product_id() -> None:
    assert settings(modelMarketplaceProductId="prod-4pmewlybdftbs").marketplace_product_id == (
        "prod-4pmewlybdftbs"
    )
    message = error(modelMarketplaceProductId="anthropic.claude")
    assert message.startswith("modelMarketplaceProductId: 'anthropic.claude' is not ")
    assert "prod-" in message


@pytest.mark.parametrize(
    ("context", "setting"),
    [
        ('{"tracing": "yes"}', "tracing"),
        ('{"notificationEmail": "not-an-email"}', "notificationEmail"),
        ('{"pollerRate": "15 minutes"}', "pollerRate"),
        ('{"idleTimeout": "3600", "maxLifetime": "1800"}', "idleTimeout"),
        ('{"agentArtifact": "zip"}', "agentArtifact"),
    ],
)
def test_app_stops_before_building_anything_with_one_line(
    tmp_path: object, context: str, setting: str
) -> None:
    # The CDK CLI hands `-c` values to the app in CDK_CONTEXT_JSON; no asset is bundled
    # and no template written when a value is refused.
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": context,
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"agentjobs: invalid context value: {setting}: ")
    assert "Bundling" not in result.stdout + result.stderr
    assert not list(tmp_path.iterdir())  # type: ignore[attr-defined]
