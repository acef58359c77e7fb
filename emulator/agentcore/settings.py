"""Settings of the local runtime, read once from flags and the environment."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_AGENT_CMD = "python agent_src/main.py"


class BusyPolicy(StrEnum):
    """What an invocation of a HealthyBusy session gets."""

    ACCEPT = "accept"  # what AWS documents: the call reaches the agent
    REJECT = "reject"  # RetryableConflictException, as the original request describes


@dataclass(frozen=True)
class RuntimeSettings:
    """Everything the local runtime can be told; defaults are AWS's where AWS has one."""

    agent_cmd: str = DEFAULT_AGENT_CMD
    agent_cwd: Path = REPO_ROOT
    idle_timeout_s: float = 900.0
    max_lifetime_s: float = 28800.0
    busy_policy: BusyPolicy = BusyPolicy.ACCEPT
    ping_interval_s: float = 2.0
    # A session whose /ping fails this many times in a row is unhealthy and is stopped.
    ping_failures: int = 3
    startup_timeout_s: float = 60.0
    stop_grace_s: float = 5.0
    max_sessions: int = 1000
    agent_log_dir: Path | None = None
    # Fork sessions from a parent that has imported the agent SDK (warm_start.py).
    warm_start: bool = True

    def __post_init__(self) -> None:
        for name in ("idle_timeout_s", "max_lifetime_s", "ping_interval_s", "startup_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.stop_grace_s < 0:
            raise ValueError(f"stop_grace_s must be zero or more, got {self.stop_grace_s}")
        if self.ping_failures < 1 or self.max_sessions < 1:
            raise ValueError("ping_failures and max_sessions must be at least 1")
        if not self.agent_cmd.strip():
            raise ValueError("agent_cmd is empty: give the command that starts one agent process")


ENV_NAMES = {
    "agent_cmd": "AGENTCORE_AGENT_CMD",
    "agent_cwd": "AGENTCORE_AGENT_CWD",
    "idle_timeout_s": "AGENTCORE_IDLE_TIMEOUT_S",
    "max_lifetime_s": "AGENTCORE_MAX_LIFETIME_S",
    "busy_policy": "AGENTCORE_BUSY_POLICY",
    "ping_interval_s": "AGENTCORE_PING_INTERVAL_S",
    "ping_failures": "AGENTCORE_PING_FAILURES",
    "startup_timeout_s": "AGENTCORE_STARTUP_TIMEOUT_S",
    "stop_grace_s": "AGENTCORE_STOP_GRACE_S",
    "max_sessions": "AGENTCORE_MAX_SESSIONS",
    "agent_log_dir": "AGENTCORE_AGENT_LOG_DIR",
    "warm_start": "AGENTCORE_WARM_START",
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def settings_from(values: Mapping[str, object], environ: Mapping[str, str]) -> RuntimeSettings:
    """Settings from flags (None: unset), else the environment, else the defaults."""
    defaults = RuntimeSettings()
    resolved: dict[str, object] = {}
    for name, env_name in ENV_NAMES.items():
        value = values.get(name)
        if value is None:
            value = environ.get(env_name) or None
        if value is None:
            continue
        default = getattr(defaults, name)
        try:
            resolved[name] = _coerce(name, value, default)
        except ValueError as exc:
            raise ValueError(f"{env_name} / --{name.replace('_', '-')}: {exc}") from exc
    return RuntimeSettings(**resolved)  # type: ignore[arg-type]


def _coerce(name: str, value: object, default: object) -> object:
    if name == "busy_policy":
        return BusyPolicy(str(value).lower())
    if name in ("agent_cwd", "agent_log_dir"):
        return Path(str(value))
    if name == "agent_cmd":
        return str(value)
    convert = _CONVERT.get(type(default))
    return value if convert is None else convert(value)


def _boolean(value: object) -> bool:
    text = str(value).strip().lower()
    if text not in _TRUE | _FALSE:
        raise ValueError(f"expected true or false (or 1 or 0), got {value!r}")
    return text in _TRUE


_CONVERT: dict[type, Callable[[object], object]] = {
    bool: _boolean,
    int: lambda value: int(str(value)),
    float: lambda value: float(str(value)),
}


def agent_python_dir() -> Path:
    """The emulator's interpreter directory: `python` in an agent command means that one."""
    return Path(sys.executable).parent
