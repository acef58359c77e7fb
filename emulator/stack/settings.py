"""Settings of `make local-up`, read once from the environment."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

LOCAL_ACCOUNT_ID = "123456789012"
"""moto's default account: the local ARNs use it so that they agree with moto's."""

RESOURCE_NAME = "agentjobs-local"

PASSED_THROUGH = (
    "AGENTCORE_AGENT_CMD",
    "AGENTCORE_IDLE_TIMEOUT_S",
    "AGENTCORE_MAX_LIFETIME_S",
    "AGENTCORE_BUSY_POLICY",
)
"""Runtime settings the local runtime reads from its own environment (it validates them)."""


class StackSettingsError(ValueError):
    """A setting is malformed; the message names the variable and a valid value."""


@dataclass(frozen=True)
class StackSettings:
    """What `make local-up` can be told through the environment."""

    state_dir: Path
    region: str = "us-east-1"
    poller_interval_s: float = 2.0
    """A demo wants the notification soon after the job ends; the deployed minimum is 60 s."""
    poller_timeout_s: float = 120.0
    """What the poller's context reports as the Lambda timeout."""
    fastpath: str = "1"
    moto_port: int = 0
    runtime_port: int = 0
    """0 picks a free port, so that two checkouts on one machine never collide."""
    session_max_lifetime_s: float = 28800.0
    """The local runtime's session max lifetime (AGENTCORE_MAX_LIFETIME_S, AgentCore's 8 h
    unless scaled down): the poller is told it too, so it hands a resumable job to a fresh
    session before the runtime ends the old one."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackSettings:
        """Read LOCAL_STATE_DIR, AWS_DEFAULT_REGION, POLLER_INTERVAL_S, POLLER_TIMEOUT_S,
        LOCAL_FASTPATH, LOCAL_MOTO_PORT, LOCAL_RUNTIME_PORT and AGENTCORE_MAX_LIFETIME_S."""
        source = os.environ if env is None else env
        fastpath = source.get("LOCAL_FASTPATH", "1").strip() or "1"
        if fastpath not in {"0", "1"}:
            raise StackSettingsError(f"LOCAL_FASTPATH must be 0 or 1; got {fastpath!r}")
        state_dir = Path(source.get("LOCAL_STATE_DIR") or REPO_ROOT / ".local")
        return cls(
            state_dir=state_dir.resolve(),
            # The local stack is not AWS: any region works, moto's default is the fallback.
            region=source.get("AWS_DEFAULT_REGION") or source.get("AWS_REGION") or "us-east-1",
            poller_interval_s=_seconds(source, "POLLER_INTERVAL_S", cls.poller_interval_s),
            poller_timeout_s=_seconds(source, "POLLER_TIMEOUT_S", cls.poller_timeout_s),
            fastpath=fastpath,
            moto_port=_port(source, "LOCAL_MOTO_PORT"),
            runtime_port=_port(source, "LOCAL_RUNTIME_PORT"),
            session_max_lifetime_s=_seconds(
                source, "AGENTCORE_MAX_LIFETIME_S", cls.session_max_lifetime_s
            ),
        )

    def poller_env(self) -> dict[str, str]:
        """What the local poller is told besides the resources: the session lifetime the
        local runtime enforces."""
        return {"POLLER_SESSION_MAX_LIFETIME_S": _seconds_text(self.session_max_lifetime_s)}

    @property
    def runtime_arn(self) -> str:
        """A well-formed runtime ARN for the local runtime (it accepts any)."""
        return (
            f"arn:aws:bedrock-agentcore:{self.region}:{LOCAL_ACCOUNT_ID}:"
            "runtime/agentjobs_local-L0ca1Agent"
        )


def _seconds(source: Mapping[str, str], name: str, default: float) -> float:
    text = source.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise StackSettingsError(
            f"{name} must be a number of seconds above 0, e.g. 2; got {text!r}"
        )
    return value


def _seconds_text(value: float) -> str:
    # Whole seconds as an integer ("28800"), never an exponent ("2.88e+04").
    return str(int(value)) if value.is_integer() else repr(value)


def _port(source: Mapping[str, str], name: str) -> int:
    text = source.get(name, "").strip()
    if not text:
        return 0
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise StackSettingsError(f"{name} must be a TCP port (0 picks a free one); got {text!r}")
    return int(text)
