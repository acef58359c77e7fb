"""Sessions of the local runtime: one agent process each, and the lifecycle /ping drives."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any

import httpx

from emulator.agentcore.agent_process import AgentProcess, base_agent_env, spawn_agent
from emulator.agentcore.exceptions import (
    SESSION_BUSY_MESSAGE,
    ResourceNotFoundException,
    RetryableConflictException,
    RuntimeClientError,
    ServiceQuotaExceededException,
    start_timeout_message,
)
from emulator.agentcore.fault_plan import FaultPlan
from emulator.agentcore.settings import BusyPolicy, RuntimeSettings
from emulator.agentcore.warm_start import WarmStarter, warm_argv
from emulator.ports import free_port

log = logging.getLogger("emulator.agentcore")

# Stopped sessions stay listed by GET /sessions; past this many the oldest are forgotten.
STOPPED_HISTORY = 1000
# While an agent starts, /ping is tried this often (the lifecycle poll is much slower).
STARTUP_POLL_S = 0.05
# A session started while the zygote still preloads waits this long for it: one preload
# costs less than a cold start beside it.
WARM_READY_WAIT_S = 5.0


class SessionState(Enum):
    """Where a session is in its life; only ACTIVE sessions take invocations."""

    STARTING = "starting"
    ACTIVE = "active"
    STOPPING = "stopping"
    STOPPED = "stopped"


class PingStatus(StrEnum):
    """What an agent's /ping reports."""

    HEALTHY = "Healthy"
    HEALTHY_BUSY = "HealthyBusy"


def iso_utc(epoch_s: float) -> str:
    """ISO 8601 UTC with milliseconds, as every time in this project is written."""
    stamp = datetime.fromtimestamp(epoch_s, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass
class Session:
    """One runtime session: its id, its agent process and what /ping last said."""

    session_id: str
    runtime_id: str
    state: SessionState = SessionState.STARTING
    process: AgentProcess | None = None
    ping: PingStatus = PingStatus.HEALTHY
    created_at: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)
    last_activity_monotonic: float = field(default_factory=time.monotonic)
    last_activity_at: float = field(default_factory=time.time)
    in_flight: int = 0
    ping_failures: int = 0
    stop_reason: str | None = None
    start_task: asyncio.Task[None] | None = None
    watch_task: asyncio.Task[None] | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def agent_url(self) -> str | None:
        """Base URL of the session's agent, once it has one."""
        return self.process.url if self.process else None

    def touch(self) -> None:
        """Record activity: a request began or ended, or the ping status changed."""
        self.last_activity_monotonic = time.monotonic()
        self.last_activity_at = time.time()

    def public_state(self) -> str:
        """`Active`, `Idle` or `Stopped`, as GET /sessions reports it."""
        # A stopping session still has its process: it is Stopped once that is gone.
        if self.state is SessionState.STOPPED:
            return "Stopped"
        if self.state is SessionState.STARTING:
            return "Active"
        if self.in_flight or self.ping is PingStatus.HEALTHY_BUSY:
            return "Active"
        return "Idle"

    def describe(self) -> dict[str, Any]:
        """The session as GET /sessions lists it."""
        return {
            "sessionId": self.session_id,
            "state": self.public_state(),
            "ping": self.ping.value,
            "agentUrl": self.agent_url,
            # Local only: the agent's process, leader of the session's process group.
            "pid": self.process.handle.pid if self.process else None,
            "createdAt": iso_utc(self.created_at),
            "lastActivityAt": iso_utc(self.last_activity_at),
        }


class LocalRuntime:
    """The state of the local runtime: sessions by id, started and stopped as AWS would."""

    def __init__(self, settings: RuntimeSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self.sessions: dict[str, Session] = {}
        self.faults = FaultPlan()
        self._ping_timeout = httpx.Timeout(max(1.0, settings.ping_interval_s))
        self.warm: WarmStarter | None = None
        base_env = base_agent_env()
        if settings.warm_start and warm_argv(settings.agent_cmd, base_env) is not None:
            self.warm = WarmStarter(base_env)

    # Invocations

    async def begin_invocation(self, session_id: str, runtime_id: str) -> Session:
        """The session an invocation goes to, started if need be; pair with `end_invocation`."""
        session = self.sessions.get(session_id)
        if session is None or session.state is SessionState.STOPPED:
            return await self._start_session(session_id, runtime_id)
        if session.state is not SessionState.ACTIVE:
            raise RetryableConflictException(SESSION_BUSY_MESSAGE)
        if self.settings.busy_policy is BusyPolicy.REJECT:
            # The lifecycle poll may be a period behind; ask the agent now.
            await self._ping(session)
            if session.state is not SessionState.ACTIVE:
                raise RetryableConflictException(SESSION_BUSY_MESSAGE)
            if session.ping is PingStatus.HEALTHY_BUSY:
                raise RetryableConflictException(
                    "Session is busy (HealthyBusy) and the busy policy is reject, please retry"
                )
        session.in_flight += 1
        session.touch()
        return session

    def end_invocation(self, session: Session) -> None:
        """An invocation's answer has been delivered (or abandoned)."""
        session.in_flight -= 1
        session.touch()

    async def _start_session(self, session_id: str, runtime_id: str) -> Session:
        running = sum(1 for s in self.sessions.values() if s.state is not SessionState.STOPPED)
        if running >= self.settings.max_sessions:
            raise ServiceQuotaExceededException(
                f"The number of running sessions ({running}) has reached the local quota "
                f"of {self.settings.max_sessions} (AGENTCORE_MAX_SESSIONS)."
            )
        self.sessions.pop(session_id, None)
        session = Session(session_id=session_id, runtime_id=runtime_id)
        session.in_flight = 1  # the invocation that caused the start
        self.sessions[session_id] = session
        self._forget_old_sessions()
        # A task, so that a caller who goes away mid-start leaves no half-started process.
        session.start_task = asyncio.create_task(self._start_agent(session))
        try:
            await asyncio.shield(session.start_task)
        except BaseException:
            session.in_flight -= 1
            raise
        return session

    async def _start_agent(self, session: Session) -> None:
        try:
            if self.warm is not None and not self.warm.settled.is_set():
                await asyncio.to_thread(self.warm.settled.wait, WARM_READY_WAIT_S)
            port = self._unused_port()
            session.process = spawn_agent(self.settings, session.session_id, port, self.warm)
            await self._wait_until_ready(session)
        except BaseException as exc:
            session.state = SessionState.STOPPING
            session.stop_reason = f"start failed: {exc}"
            if session.process is not None:
                await session.process.terminate(self.settings.stop_grace_s)
            session.state = SessionState.STOPPED
            session.stopped.set()
            log.warning("session %s failed to start: %s", session.session_id, exc)
            raise
        session.state = SessionState.ACTIVE
        session.touch()
        session.watch_task = asyncio.create_task(self._watch(session))
        log.info("session %s started at %s", session.session_id, session.agent_url)

    def _unused_port(self) -> int:
        """A free port that no live session holds: sessions starting at once would otherwise
        race for one port, and the loser's readiness check would answer from the winner."""
        held = {
            s.process.port
            for s in self.sessions.values()
            if s.process is not None and not s.process.exited()
        }
        while True:
            port = free_port()
            if port not in held:
                return port

    async def _wait_until_ready(self, session: Session) -> None:
        process = session.process
        assert process is not None
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while time.monotonic() < deadline:
            if process.exited():
                # AWS reports a crashed start as a start timeout; say what happened instead.
                raise RuntimeClientError(
                    "Runtime initialization failed: the agent process exited with code "
                    f"{process.handle.returncode} before answering /ping."
                )
            if await self._ping(session, count_failures=False):
                return
            await asyncio.sleep(STARTUP_POLL_S)
        raise RuntimeClientError(start_timeout_message(self.settings.startup_timeout_s))

    # Lifecycle

    async def _ping(self, session: Session, *, count_failures: bool = True) -> bool:
        """Ask the agent's /ping; record its status. False when it did not answer well."""
        process = session.process
        if process is None:
            return False
        try:
            answer = await self.http.get(f"{process.url}/ping", timeout=self._ping_timeout)
            status = PingStatus(answer.json()["status"]) if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            status = None
        if status is None:
            if count_failures:
                session.ping_failures += 1
            return False
        session.ping_failures = 0
        if status is not session.ping:
            session.ping = status
            session.touch()
        return True

    async def _watch(self, session: Session) -> None:
        while session.state is SessionState.ACTIVE:
            await asyncio.sleep(self.settings.ping_interval_s)
            if session.state is not SessionState.ACTIVE:
                return
            try:
                reason = await self._reason_to_stop(session)
            except Exception:
                # An unwatched session would never idle out: end it rather than leak it.
                log.exception("session %s: lifecycle check failed", session.session_id)
                reason = "lifecycle check failed"
            if reason is not None:
                await self._stop(session, reason)
                return

    async def _reason_to_stop(self, session: Session) -> str | None:
        settings = self.settings
        process = session.process
        if process is None or process.exited():
            return "agent process exited"
        now = time.monotonic()
        if now - session.started_monotonic >= settings.max_lifetime_s:
            return "max lifetime reached"
        await self._ping(session)
        if session.ping_failures >= settings.ping_failures:
            return "health check failed"
        idle_for = time.monotonic() - session.last_activity_monotonic
        if (
            session.in_flight == 0
            and session.ping is PingStatus.HEALTHY
            and idle_for >= settings.idle_timeout_s
        ):
            return "idle timeout"
        return None

    async def stop_session(self, session_id: str) -> Session:
        """StopRuntimeSession: end the session now; its process is gone when this returns."""
        session = self.sessions.get(session_id)
        if session is None or session.state is SessionState.STOPPED:
            raise ResourceNotFoundException(f"Session {session_id} not found.")
        if session.state is not SessionState.ACTIVE:
            raise RetryableConflictException(SESSION_BUSY_MESSAGE)
        await asyncio.shield(asyncio.create_task(self._stop(session, "StopRuntimeSession")))
        return session

    async def _stop(self, session: Session, reason: str) -> None:
        if session.state in (SessionState.STOPPING, SessionState.STOPPED):
            await session.stopped.wait()
            return
        session.state = SessionState.STOPPING
        session.stop_reason = reason
        watcher = session.watch_task
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
        if session.process is not None:
            await session.process.terminate(self.settings.stop_grace_s)
        session.state = SessionState.STOPPED
        session.touch()
        session.stopped.set()
        log.info("session %s stopped: %s", session.session_id, reason)

    async def shutdown(self) -> None:
        """Stop every session, starting ones included: no agent process outlives the runtime."""
        starting = [
            s.start_task
            for s in self.sessions.values()
            if s.state is SessionState.STARTING and s.start_task is not None
        ]
        for task in starting:
            task.cancel()
        await asyncio.gather(*starting, return_exceptions=True)
        await asyncio.gather(
            *(self._stop(s, "local runtime shut down") for s in list(self.sessions.values())),
            return_exceptions=True,
        )
        if self.warm is not None:
            await asyncio.to_thread(self.warm.close)

    def kill_all_now(self) -> None:
        """Synchronous last resort (interpreter exit): SIGKILL every agent process group."""
        for session in self.sessions.values():
            if session.process is not None and not session.process.exited():
                session.process.kill_now()
        if self.warm is not None:
            self.warm.close()

    def describe(self) -> list[dict[str, Any]]:
        """Every known session, oldest first."""
        return [s.describe() for s in sorted(self.sessions.values(), key=lambda s: s.created_at)]

    def _forget_old_sessions(self) -> None:
        stopped = [s for s in self.sessions.values() if s.state is SessionState.STOPPED]
        if len(stopped) <= STOPPED_HISTORY:
            return
        stopped.sort(key=lambda s: s.last_activity_monotonic)
        for session in stopped[: len(stopped) - STOPPED_HISTORY]:
            del self.sessions[session.session_id]
