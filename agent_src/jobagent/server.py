"""The BedrockAgentCoreApp: routes invocations to the handler, stops the jobs on shutdown."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bedrock_agentcore import BedrockAgentCoreApp, RequestContext
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentjobs.protocol import USER_ID_HEADER
from jobagent.handler import RequestHandler
from jobagent.runner import JobRunner
from jobagent.settings import Settings
from jobagent.stores import AgentStores

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 5.0


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


def build_app(settings: Settings | None = None) -> BedrockAgentCoreApp:
    """The agent's app, ready for `app.run(...)`; reads the environment when not given settings."""
    settings = settings or Settings.from_env()
    stores = AgentStores(settings)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        threading.Thread(target=stores.warm_up, name="warm-up", daemon=True).start()
        try:
            yield
        finally:
            # uvicorn re-raises SIGTERM after this, so atexit hooks never run: stop here.
            await asyncio.to_thread(runner.shutdown, SHUTDOWN_GRACE_S)

    app = BedrockAgentCoreApp(lifespan=lifespan, middleware=[Middleware(UndecodableBodyAs400)])
    app.logger.propagate = False
    runner = JobRunner(settings, stores, app)
    handler = RequestHandler(runner)

    @app.entrypoint
    def invoke(payload: Any, context: RequestContext) -> dict[str, Any]:
        return handler.handle(payload, context.session_id, _owner(context))

    return app


def _owner(context: RequestContext) -> str | None:
    request = getattr(context, "request", None)
    if request is None:
        return None
    owner = request.headers.get(USER_ID_HEADER)
    return owner if isinstance(owner, str) and owner else None
