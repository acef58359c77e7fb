"""The stack's settings: CDK context values, their documented defaults, and their validation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agentjobs.model_ids import DEFAULT_MODEL_ID, ModelIdError, parse_model_id
from infra.bundling import PROJECT_ROOT

ArtifactKind = Literal["code", "docker"]

_BOOLEANS = {"true": True, "false": False}

DEFAULT_POLLER_RATE_MINUTES = 1
DEFAULT_IDLE_TIMEOUT_S = 900
DEFAULT_MAX_LIFETIME_S = 28_800
DEFAULT_ARTIFACT: ArtifactKind = "code"
DEFAULT_RESULT_RETENTION_DAYS = 30
DEFAULT_TRACING = False
"""X-Ray delivery needs CloudWatch Transaction Search on in the account: opt-in."""
DEFAULT_AGENT_DIR = PROJECT_ROOT / "agent_src"
"""The project's own agent; `agentDir` deploys another folder in its place."""
DEFAULT_AGENT_ENTRYPOINT = "main.py"

LIFETIME_RANGE_S = (60, 28_800)
"""AgentCore's bounds for both lifecycle settings on microVMs."""
MAX_POLLER_RATE_MINUTES = 14
"""The schedule must fire well inside AgentCore's default 15-minute idle window."""
RETENTION_RANGE_DAYS = (1, 3650)

_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}$")
_RATE = re.compile(r"^(\d+)\s*(m|min|mins|minute|minutes)?$", re.IGNORECASE)
_PRODUCT_ID = re.compile(r"^prod-[a-z0-9]{10,20}$")
_ENTRYPOINT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.py$")
LIBRARY_PACKAGE = "agentjobs"
"""Bundled next to the user's files: a top-level entry of theirs by this name would shadow it."""


class DeploySettingsError(ValueError):
    """One invalid context value; the message is one line naming it and what is allowed."""


@dataclass(frozen=True)
class DeploySettings:
    """Everything the stack reads from CDK context (`-c name=value` or cdk.json)."""

    notification_emails: tuple[str, ...] = ()
    poller_rate_minutes: int = DEFAULT_POLLER_RATE_MINUTES
    idle_timeout_s: int = DEFAULT_IDLE_TIMEOUT_S
    max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S
    model_id: str = DEFAULT_MODEL_ID
    agent_artifact: ArtifactKind = DEFAULT_ARTIFACT
    result_retention_days: int = DEFAULT_RESULT_RETENTION_DAYS
    tracing: bool = DEFAULT_TRACING
    marketplace_product_id: str | None = None
    """The model's AWS Marketplace product id: when set, the agent may subscribe to it on
    its first call; when unset, an administrator makes the first call (docs/deploy.md)."""
    email_result_preview: bool = False
    """emailResultPreview: put a short, labelled preview of an inline result in the email.
    Off by default: an email leaves the KMS boundary (docs/security.md)."""
    agent_dir: Path = DEFAULT_AGENT_DIR
    """The folder deployed at the root of the agent's bundle (absolute, resolved)."""
    agent_entrypoint: str = DEFAULT_AGENT_ENTRYPOINT
    """The file at the top of `agent_dir` that AgentCore runs."""

    @classmethod
    def from_context(
        cls, get: Callable[[str], Any], app_root: Path = PROJECT_ROOT
    ) -> DeploySettings:
        """Read and validate every setting through `get` (e.g. `app.node.try_get_context`).

        A relative `agentDir` is taken from `app_root`, the folder of the CDK app (where
        `cdk.json` is, and so where the CDK CLI runs it). Raises DeploySettingsError on the first
        invalid value, before any resource is built.
        """
        idle = _seconds(get("idleTimeout"), "idleTimeout", DEFAULT_IDLE_TIMEOUT_S)
        lifetime = _seconds(get("maxLifetime"), "maxLifetime", DEFAULT_MAX_LIFETIME_S)
        if idle > lifetime:
            raise DeploySettingsError(
                f"idleTimeout: {idle} s is above maxLifetime ({lifetime} s); "
                "allowed: idleTimeout <= maxLifetime"
            )
        agent_dir = _agent_dir(get("agentDir"), app_root)
        return cls(
            notification_emails=_emails(get("notificationEmail")),
            poller_rate_minutes=_poller_rate(get("pollerRate"), idle),
            idle_timeout_s=idle,
            max_lifetime_s=lifetime,
            model_id=_model_id(get("modelId")),
            agent_artifact=_artifact(get("agentArtifact")),
            result_retention_days=_retention(get("resultRetentionDays")),
            tracing=_tracing(get("tracing")),
            marketplace_product_id=_product_id(get("modelMarketplaceProductId")),
            email_result_preview=_boolean(get("emailResultPreview"), "emailResultPreview"),
            agent_dir=agent_dir,
            agent_entrypoint=_agent_entrypoint(get("agentEntrypoint"), agent_dir),
        )


def _text(value: Any) -> str | None:
    """A context value as stripped text; None when unset or empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _emails(value: Any) -> tuple[str, ...]:
    text = _text(value)
    if text is None:
        return ()
    emails = tuple(part.strip() for part in text.split(","))
    for email in emails:
        if not _EMAIL.match(email):
            raise DeploySettingsError(
                f"notificationEmail: {email!r} is not an email address; "
                "allowed: one or more addresses separated by commas, e.g. me@example.com"
            )
    if len(set(emails)) != len(emails):
        raise DeploySettingsError(f"notificationEmail: {text!r} lists an address twice")
    return emails


def _whole_number(value: Any, name: str, allowed: str) -> int:
    text = _text(value)
    if text is None or isinstance(value, bool) or not re.fullmatch(r"\d+", text):
        raise DeploySettingsError(f"{name}: {value!r} is not a whole number; allowed: {allowed}")
    return int(text)


def _seconds(value: Any, name: str, default: int) -> int:
    if _text(value) is None:
        return default
    low, high = LIFETIME_RANGE_S
    allowed = f"whole seconds from {low} to {high}"
    seconds = _whole_number(value, name, allowed)
    if not low <= seconds <= high:
        raise DeploySettingsError(f"{name}: {seconds} s is out of range; allowed: {allowed}")
    return seconds


def _poller_rate(value: Any, idle_timeout_s: int) -> int:
    """Minutes between poller runs: at least two runs per idle window, always under 15."""
    highest = min(MAX_POLLER_RATE_MINUTES, idle_timeout_s // 120)
    if highest < 1:
        raise DeploySettingsError(
            f"pollerRate: no rate fits idleTimeout {idle_timeout_s} s; allowed: "
            "idleTimeout of at least 120 s, so the 1-minute minimum rate polls twice per window"
        )
    allowed = (
        f"1 to {highest} whole minutes, e.g. '1 minute' (under 15 minutes, and at most half "
        f"the idle timeout of {idle_timeout_s} s so every session is polled twice per window)"
    )
    text = _text(value)
    if text is None:
        minutes = DEFAULT_POLLER_RATE_MINUTES
    else:
        match = _RATE.match(text)
        if match is None:
            raise DeploySettingsError(f"pollerRate: {text!r} is not a rate; allowed: {allowed}")
        minutes = int(match.group(1))
    if not 1 <= minutes <= highest:
        raise DeploySettingsError(
            f"pollerRate: {minutes} minutes is not allowed; allowed: {allowed}"
        )
    return minutes


def _model_id(value: Any) -> str:
    text = _text(value)
    if text is None:
        return DEFAULT_MODEL_ID
    try:
        return parse_model_id(text)
    except ModelIdError as exc:
        raise DeploySettingsError(f"modelId: {exc}") from None


def _artifact(value: Any) -> ArtifactKind:
    text = _text(value)
    if text is None:
        return DEFAULT_ARTIFACT
    if text == "code":
        return "code"
    if text == "docker":
        return "docker"
    raise DeploySettingsError(f"agentArtifact: {text!r} is unknown; allowed: code or docker")


def _retention(value: Any) -> int:
    if _text(value) is None:
        return DEFAULT_RESULT_RETENTION_DAYS
    low, high = RETENTION_RANGE_DAYS
    allowed = f"whole days from {low} to {high}"
    days = _whole_number(value, "resultRetentionDays", allowed)
    if not low <= days <= high:
        raise DeploySettingsError(
            f"resultRetentionDays: {days} is out of range; allowed: {allowed}"
        )
    return days


def _tracing(value: Any) -> bool:
    return _boolean(value, "tracing", DEFAULT_TRACING)


def _boolean(value: Any, name: str, default: bool = False) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value)
    if text is None:
        return default
    if text not in _BOOLEANS:
        raise DeploySettingsError(f"{name}: {text!r} is not allowed; allowed: true or false")
    return _BOOLEANS[text]


def _product_id(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    if not _PRODUCT_ID.match(text):
        raise DeploySettingsError(
            f"modelMarketplaceProductId: {text!r} is not an AWS Marketplace product id; "
            "allowed: the id on the model's Bedrock model card, e.g. prod-4pmewlybdftbs"
        )
    return text


def _agent_dir(value: Any, app_root: Path) -> Path:
    text = _text(value)
    allowed = (
        f"a folder holding your agent, relative to the app ({app_root}) or absolute, e.g. agent_src"
    )
    shown = text or DEFAULT_AGENT_DIR.name
    try:
        folder = (app_root / Path(shown).expanduser()).resolve()
        exists, is_dir = folder.exists(), folder.is_dir()
        names = {p.name for p in folder.iterdir()} if is_dir else set()
    except (OSError, RuntimeError, ValueError) as exc:
        # A NUL byte, a symlink loop or an unreadable folder: say which, not how Python failed.
        reason = "not a path" if isinstance(exc, ValueError) else type(exc).__name__
        raise DeploySettingsError(
            f"agentDir: {shown!r} cannot be read ({reason}); allowed: {allowed}"
        ) from None
    if not exists:
        raise DeploySettingsError(
            f"agentDir: {shown!r} does not exist ({folder}); allowed: {allowed}"
        )
    if not is_dir:
        raise DeploySettingsError(
            f"agentDir: {shown!r} is a file, not a folder; allowed: {allowed}"
        )
    if app_root.resolve().is_relative_to(folder):
        # The bundle would hold the app itself: its caches, node_modules and .venv.
        raise DeploySettingsError(
            f"agentDir: {shown!r} holds the CDK app itself; allowed: a folder of its own, "
            "such as agent_src or examples/NAME"
        )
    shadowing = sorted(names & {LIBRARY_PACKAGE, f"{LIBRARY_PACKAGE}.py"})
    if shadowing:
        raise DeploySettingsError(
            f"agentDir: {shown!r} has its own top-level {shadowing[0]!r}, which would shadow "
            f"the {LIBRARY_PACKAGE} library bundled next to it; allowed: a folder without one "
            "(rename yours)"
        )
    return folder


def _agent_entrypoint(value: Any, folder: Path) -> str:
    text = _text(value)
    name = text or DEFAULT_AGENT_ENTRYPOINT
    if not _ENTRYPOINT.match(name):
        raise DeploySettingsError(
            f"agentEntrypoint: {name!r} is not a file name; allowed: a .py file at the top of "
            "agentDir, e.g. main.py (AgentCore runs it from the bundle's root, where the "
            "dependencies are)"
        )
    if not (folder / name).is_file():
        found = sorted(p.name for p in folder.glob("*.py") if p.is_file())
        listed = ", ".join(found[:10]) + (", ..." if len(found) > 10 else "") or "none"
        raise DeploySettingsError(
            f"agentEntrypoint: {name!r} is not a file in agentDir {folder}; allowed: a .py "
            f"file at its top (it has: {listed})"
        )
    return name
