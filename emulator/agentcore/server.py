"""The local runtime as an ASGI app, and the uvicorn server that runs it on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.agentcore.models import LocalRuntime
from emulator.agentcore.responses import RuntimeResponses
from emulator.agentcore.settings import RuntimeSettings

log = logging.getLogger("emulator.agentcore")

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(settings: RuntimeSettings) -> Starlette:
    """An app serving the AgentCore data plane; its shutdown stops every agent it started."""
    state: dict[str, RuntimeResponses] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # One pooled client for every agent: keep-alive connections keep the added latency low.
        # trust_env=False: a developer's HTTP(S)_PROXY must not capture calls to 127.0.0.1.
        async with httpx.AsyncClient(
            trust_env=False,
            timeout=httpx.Timeout(connect=10.0, read=None, write=60.0, pool=None),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=1000),
        ) as http:
            runtime = LocalRuntime(settings, http)
            state["responses"] = RuntimeResponses(runtime)
            try:
                yield
            finally:
                await runtime.shutdown()
                runtime.kill_all_now()

    async def endpoint(request: Request) -> Response:
        return await state["responses"].dispatch(request)

    return Starlette(
        routes=[Route("/{path:path}", endpoint, methods=ALL_METHODS)], lifespan=lifespan
    )


def serve(settings: RuntimeSettings, host: str = "127.0.0.1", port: int = 8900) -> None:
    """Run the local runtime until SIGINT or SIGTERM; every agent process is stopped first."""
    # httpx logs every request to an agent at INFO: far too loud for a proxy.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log.info(
        "local AgentCore runtime on http://%s:%d, agent command %r", host, port, settings.agent_cmd
    )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Open streams would otherwise hold shutdown, and with it the agents, forever.
        timeout_graceful_shutdown=max(1, int(settings.stop_grace_s)),
    )
