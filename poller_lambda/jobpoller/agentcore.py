"""The AgentCore data plane as the poller uses it: ask a session about a job, stop a session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from agentjobs.invocation import DEFAULT_QUALIFIER, invoke_session
from jobpoller.settings import PollerSettings

# Codes that mean "the session is there but cannot answer now": still running, ask next tick.
# RetryableConflictException is also how a runtime that rejects calls to a HealthyBusy
# session answers (docs/local-runtime.md, the busy policies: AWS documents no such refusal).
_BUSY_CODES = frozenset(
    {"RetryableConflictException", "ThrottlingException", "ServiceQuotaExceededException"}
)
_GONE_CODES = frozenset({"ResourceNotFoundException"})


@dataclass(frozen=True)
class Replied:
    """The agent answered; `body` is its JSON bytes."""

    body: bytes


@dataclass(frozen=True)
class Busy:
    """The runtime refused for now (conflict or throttling); not a failure of the job."""

    code: str


@dataclass(frozen=True)
class Unreachable:
    """The call failed (timeout, connection, 4xx/5xx); `reason` is safe to store."""

    reason: str


Reply = Replied | Busy | Unreachable


class StopSessionError(Exception):
    """StopRuntimeSession failed; the next tick tries again."""


def agentcore_client(session: Any, settings: PollerSettings) -> Any:
    """A bedrock-agentcore client that never retries on its own: a retried InvokeAgentRuntime
    is a second invocation, and a poll that times out is simply asked again next tick."""
    return session.client(
        "bedrock-agentcore",
        config=Config(
            retries={"total_max_attempts": 1},
            read_timeout=settings.read_timeout_s,
            connect_timeout=settings.connect_timeout_s,
            max_pool_connections=settings.concurrency,
        ),
    )


class RuntimeClient:
    """The poller's client of one AgentCore runtime endpoint, addressed by ARN and qualifier."""

    def __init__(self, client: Any, runtime_arn: str, qualifier: str = DEFAULT_QUALIFIER) -> None:
        self._client = client
        self.runtime_arn = runtime_arn
        self.qualifier = qualifier

    def ask(self, session_id: str, payload: dict[str, Any]) -> Reply:
        """Invoke the session with `payload` and return its answer, never raising."""
        try:
            status_code, body = invoke_session(
                self._client, self.runtime_arn, session_id, payload, qualifier=self.qualifier
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            if code in _BUSY_CODES:
                return Busy(code)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            return Unreachable(f"InvokeAgentRuntime failed: {code} (HTTP {status})")
        except BotoCoreError as exc:
            return Unreachable(f"InvokeAgentRuntime failed: {type(exc).__name__}")
        if status_code != 200:
            return Unreachable(f"InvokeAgentRuntime answered HTTP {status_code}")
        return Replied(body)

    def stop_session(self, session_id: str) -> bool:
        """Stop the session; True if it was running, False if it was already gone."""
        try:
            self._client.stop_runtime_session(
                agentRuntimeArn=self.runtime_arn,
                runtimeSessionId=session_id,
                qualifier=self.qualifier,
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            if code in _GONE_CODES:
                return False
            raise StopSessionError(f"StopRuntimeSession failed: {code}") from exc
        except BotoCoreError as exc:
            raise StopSessionError(f"StopRuntimeSession failed: {type(exc).__name__}") from exc
        return True
