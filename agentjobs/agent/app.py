"""JobApp: a BedrockAgentCoreApp that runs declared jobs and speaks the job protocol."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from bedrock_agentcore import BedrockAgentCoreApp, RequestContext
from pydantic import BaseModel
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentjobs.agent.adapters import AgentAdapters
from agentjobs.agent.declarations import Availability, CpuRule, JobDeclarationError, JobSpec
from agentjobs.agent.declarations import declare as declare_job
from agentjobs.agent.handler import RequestHandler
from agentjobs.agent.runner import JobRunner
from agentjobs.agent.serving import StartupError, bind_address
from agentjobs.agent.settings import AgentSettings
from agentjobs.protocol import PING_METHOD, USER_ID_HEADER, Action, job_name_problem

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 5.0

F = TypeVar("F", bound=Callable[..., Any])

_JOB_ACTIONS = frozenset(a.value for a in Action)


@dataclass(frozen=True)
class _Caller:
    session_id: str | None
    owner: str | None


_CALLER: contextvars.ContextVar[_Caller | None] = contextvars.ContextVar(
    "agentjobs_caller", default=None
)
"""Who sent the invocation being served: `start_job` from the user's entrypoint (or a tool it
calls) starts the job in that caller's session, for that caller."""


def is_job_request(payload: object) -> bool:
    """Whether a payload is for the job protocol rather than the app's own entrypoint: an
    object whose `action` is one of the protocol's (submit, status, result, cancel, and the
    poller's resume and suspend), or `{"method": "ping"}`."""
    if not isinstance(payload, dict):
        return False
    action = payload.get("action")
    return (isinstance(action, str) and action in _JOB_ACTIONS) or payload.get(
        "method"
    ) == PING_METHOD


class _Runtime:
    """What serving jobs needs, made from the environment once, when the app first serves."""

    def __init__(self, app: JobApp) -> None:
        self.settings = AgentSettings.from_env()
        self.adapters = AgentAdapters(self.settings)
        self.runner = JobRunner(
            self.settings, self.adapters, app, app.jobs, default_job=app.default_job
        )
        self.handler = RequestHandler(self.runner)


class JobApp(BedrockAgentCoreApp):
    """A BedrockAgentCoreApp whose invocations are jobs: declare each with `@app.job(name)`.

    Job requests (`action` submit/status/result/cancel, `{"method": "ping"}`) are always
    served by the job protocol. Anything else goes to the app's own `@app.entrypoint` when
    it has one (a chat agent keeps its entrypoint and starts jobs with `start_job`), and is
    otherwise a submit of `default_job` (`{"prompt": ...}`) or refused.
    """

    def __init__(
        self,
        *,
        default_job: str | None = None,
        debug: bool = False,
        lifespan: Callable[[Any], AbstractAsyncContextManager[Any]] | None = None,
        middleware: Sequence[Middleware] | None = None,
    ) -> None:
        if default_job is not None and (problem := job_name_problem(default_job)) is not None:
            raise JobDeclarationError(f"JobApp(default_job={default_job!r}): {problem}")
        self.default_job = default_job
        self.jobs: dict[str, JobSpec] = {}
        self._runtime_lock = threading.Lock()
        self._runtime: _Runtime | None = None
        self._user_entrypoint = False
        super().__init__(
            debug=debug,
            lifespan=self._lifespan(lifespan),
            middleware=[Middleware(UndecodableBodyAs400), *(middleware or ())],
        )
        self.logger.propagate = False
        self.handlers["main"] = self._serve_job_request

    # -- declaring ------------------------------------------------------------------------

    def job(
        self,
        name: str,
        *,
        cpu: CpuRule = False,
        availability: Availability | None = None,
        resumable: bool = False,
        retry_on: tuple[type[Exception], ...] = (),
    ) -> Callable[[F], F]:
        """Declare the decorated function as the job `name`.

        Its first parameter's annotation validates the input (a pydantic model, or `dict`
        for the raw object); an optional second parameter gets the JobContext. `cpu=True`
        (or a function of the validated input saying when) runs the job in a child process,
        which a cancel terminates. `availability()` is asked at each submit and returns why
        the job cannot run now (a missing setting, say), or None. `resumable=True` lets the
        job store checkpoints (`ctx.checkpoint`) and be resumed from the last one in a fresh
        session when its own is lost; `retry_on` (resumable jobs only) names exceptions that
        are retried in place with backoff, each try an attempt. Bad declarations raise
        JobDeclarationError at import, naming the function.
        """
        if callable(name) and not isinstance(name, str):
            raise JobDeclarationError(
                f'@app.job needs the job\'s name: write @app.job("name") above '
                f"{getattr(name, '__qualname__', name)!r}"
            )

        def register(func: F) -> F:
            spec = declare_job(
                name,
                func,
                cpu=cpu,
                availability=availability,
                resumable=resumable,
                retry_on=retry_on,
            )
            known = self.jobs.get(spec.name)
            if known is not None:
                raise JobDeclarationError(
                    f"job {spec.name!r} is declared twice, by {known.label} and by "
                    f"{spec.label}; give each job its own name"
                )
            self.jobs[spec.name] = spec
            return func

        return register

    def entrypoint(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """The app's own entrypoint, as on any BedrockAgentCoreApp: it gets every payload
        that is not a job request."""
        self._user_entrypoint = True
        return super().entrypoint(func)

    # -- starting jobs from code ----------------------------------------------------------

    def start_job(
        self,
        name: str,
        job_input: dict[str, Any] | BaseModel | None = None,
        *,
        client_token: str | None = None,
        max_runtime_s: float | None = None,
        session_id: str | None = None,
        max_attempts: int | None = None,
    ) -> dict[str, Any]:
        """Start job `name` as a submit would, from the app's entrypoint or a tool it calls:
        in the invocation's session and for its caller unless `session_id` is given. Returns
        the submit's answer (`job_id`, `session_id`, `status`, ...) or, when refused, an
        answer with `error` ({"code", "message"}); never raises for bad input."""
        payload: dict[str, Any] = {"action": "submit", "kind": name}
        if isinstance(job_input, BaseModel):
            payload["input"] = job_input.model_dump(mode="json")
        elif job_input is not None:
            payload["input"] = job_input
        if client_token is not None:
            payload["client_token"] = client_token
        if max_runtime_s is not None:
            payload["max_runtime_s"] = max_runtime_s
        if max_attempts is not None:
            payload["max_attempts"] = max_attempts
        caller = _CALLER.get()
        session = session_id or (caller.session_id if caller else None)
        return self._job_handler().handle(payload, session, caller.owner if caller else None)

    def job_status(self, job_id: str | None = None) -> dict[str, Any]:
        """A job's status as `{"action": "status"}` answers it, asked from the entrypoint or a
        tool: for the invocation's caller, live while this process runs the job, else from the
        stores. `job_id` omitted means the session's latest job. Never raises."""
        return self._ask("status", job_id)

    def job_result(self, job_id: str | None = None) -> dict[str, Any]:
        """A job's answer to `{"action": "result"}` (its result or error once it ended), for the
        invocation's caller, as `job_status` asks it. Never raises."""
        return self._ask("result", job_id)

    def _ask(self, action: str, job_id: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"action": action}
        if job_id is not None:
            payload["job_id"] = job_id
        caller = _CALLER.get()
        return self._job_handler().handle(
            payload, caller.session_id if caller else None, caller.owner if caller else None
        )

    # -- serving --------------------------------------------------------------------------

    def run(self, port: int | None = None, host: str | None = None, **kwargs: Any) -> None:
        """Serve on AGENT_BIND_HOST:PORT (default 0.0.0.0:8080, as AgentCore needs) until
        SIGTERM or SIGINT; a bad setting is one line on stderr and exit status 2."""
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
        try:
            env_host, env_port = bind_address(os.environ)
            self.check()
            self._ensure_runtime()
        except (StartupError, JobDeclarationError, ValueError) as exc:
            print(f"agent: {exc}", file=sys.stderr)
            sys.exit(2)
        kwargs.setdefault("timeout_graceful_shutdown", int(SHUTDOWN_GRACE_S))
        super().run(port=port or env_port, host=host or env_host, **kwargs)

    def check(self) -> None:
        """Raise JobDeclarationError when the app cannot serve as declared."""
        if self.default_job is not None and self.default_job not in self.jobs:
            names = ", ".join(sorted(self.jobs)) or "none"
            raise JobDeclarationError(
                f"JobApp(default_job={self.default_job!r}) names no job of this app; "
                f"its jobs are: {names}"
            )

    def child_pids(self) -> list[int]:
        """Process ids of the running jobs' child processes."""
        runtime = self._runtime
        return runtime.runner.child_pids() if runtime is not None else []

    def _ensure_runtime(self) -> _Runtime:
        if self._runtime is None:
            with self._runtime_lock:
                if self._runtime is None:
                    self._runtime = _Runtime(self)
        return self._runtime

    def _job_handler(self) -> RequestHandler:
        return self._ensure_runtime().handler

    def _serve_job_request(self, payload: Any, context: RequestContext) -> dict[str, Any]:
        return self._job_handler().handle(payload, context.session_id, _owner(context))

    async def _invoke_handler(
        self, handler: Callable[..., Any], request_context: Any, takes_context: bool, payload: Any
    ) -> Any:
        # The one hook into the SDK's dispatch (bedrock-agentcore is pinned): job requests
        # never reach the user's entrypoint, and the user's sees who invoked it.
        if handler == self._serve_job_request or is_job_request(payload):
            return await super()._invoke_handler(
                self._serve_job_request, request_context, True, payload
            )
        token = _CALLER.set(_Caller(request_context.session_id, _owner(request_context)))
        try:
            return await super()._invoke_handler(handler, request_context, takes_context, payload)
        finally:
            _CALLER.reset(token)

    def _lifespan(
        self, inner: Callable[[Any], AbstractAsyncContextManager[Any]] | None
    ) -> Callable[[Any], AbstractAsyncContextManager[None]]:
        @asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            runtime = self._ensure_runtime()
            threading.Thread(target=runtime.adapters.warm_up, name="warm-up", daemon=True).start()
            try:
                if inner is None:
                    yield
                else:
                    async with inner(app):
                        yield
            finally:
                # uvicorn re-raises SIGTERM after this, so atexit hooks never run: stop here.
                await asyncio.to_thread(runtime.runner.shutdown, SHUTDOWN_GRACE_S)

        return lifespan


def _owner(context: RequestContext) -> str | None:
    request = getattr(context, "request", None)
    if request is None:
        return None
    owner = request.headers.get(USER_ID_HEADER)
    return owner if isinstance(owner, str) and owner else None


class UndecodableBodyAs400:
    """The SDK answers bad JSON with 400 but lets RecursionError (deep nesting) and
    ValueError (integers beyond Python's digit limit) escape as a 500. Answer those as the
    SDK answers any other undecodable body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except (RecursionError, ValueError):
            if started:
                raise
            log.warning("undecodable request body refused")
            response = JSONResponse(
                {"error": "Invalid JSON", "details": "the body could not be decoded"},
                status_code=400,
            )
            await response(scope, receive, send)
