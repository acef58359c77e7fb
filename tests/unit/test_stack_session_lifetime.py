"""The local stack tells its poller the session lifetime its runtime enforces."""

from __future__ import annotations

import pytest

from emulator.stack.settings import StackSettings, StackSettingsError


def test_the_poller_is_told_agentcores_max_lifetime_by_default() -> None:
    settings = StackSettings.from_env({})
    assert settings.poller_env() == {"POLLER_SESSION_MAX_LIFETIME_S": "28800"}


@pytest.mark.parametrize(("scaled", "told"), [("120", "120"), ("7.5", "7.5"), ("1e5", "100000")])
def test_a_scaled_runtime_lifetime_reaches_the_poller(scaled: str, told: str) -> None:
    settings = StackSettings.from_env({"AGENTCORE_MAX_LIFETIME_S": scaled})
    assert settings.poller_env() == {"POLLER_SESSION_MAX_LIFETIME_S": told}


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan", "inf"])
def test_a_malformed_lifetime_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(StackSettingsError, match="AGENTCORE_MAX_LIFETIME_S"):
        StackSettings.from_env({"AGENTCORE_MAX_LIFETIME_S": value})
