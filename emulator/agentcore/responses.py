"""The wire format: InvokeAgentRuntime, StopRuntimeSession and the local-only routes over HTTP."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import unquote

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from emulator.agentcore.exceptions import (
    MODELED_ERRORS,
    AgentCoreError,
    InternalServerException,
    RuntimeClientError,
    UnknownOperationException,
    ValidationException,
    agent_error_message,
)
from emulator.agentcore.fault_plan import Fault
from emulator.agentcore.models import LocalRuntime, Session

log = logging.getLogger("emulator.agentcore")

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
REQUEST_ID_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Request-Id"
CUSTOM_HEADER_PREFIX = "x-amzn-bedrock-agentcore-runtime-custom-"
MAX_PAYLOAD_BYTES = 100_000_000
SESSION_ID_MIN, SESSION_ID_MAX = 33, 256

RUNTIME_ARN = re.compile(
    r"arn:aws(-[^:]+)?:bedrock-agentcore:[a-z0-9-]+:[0-9]{12}:runtime/"
    r"(?P<id>[a-zA-Z][a-zA-Z0-9_]{0,47}-[a-zA-Z0-9]{10})"
)
RUNTIME_ID = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,99}-[a-zA-Z0-9]{10}")
ACCOUNT_ID = re.compile(r"[0-9]{12}")
# An endpoint name (DEFAULT, prod, ...) or a version number.
QUALIFIER = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,47}|[1-9][0-9]{0,4}")

# Request headers the runtime passes on to the agent (lower case), besides the prefixes.
FORWARDED_HEADERS = frozenset(
    {"content-type", "accept", "authorization", "x-amzn-trace-id", "traceparent", "tracestate"}
    | {"baggage"}
)
FORWARDED_PREFIXES = (CUSTOM_HEADER_PREFIX, "mcp-")
# Trace headers come back to the caller as the agent set them, else as the caller sent them.
ECHOED_HEADERS = ("x-amzn-trace-id", "traceparent", "tracestate", "baggage")
AGENT_ANSWER_HEADERS = ("mcp-session-id", "mcp-protocol-version")
LOCAL_OPERATIONS = {("GET", "/sessions"), ("POST", "/faults"), ("DELETE", "/faults")}


class RuntimeResponses:
    """HTTP front of a LocalRuntime: one ASGI endpoint, routed by method and raw path."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime

    async def dispatch(self, request: Request) -> Response:
        """Answer any request, errors included, the way the AWS endpoint would."""
        request_id = str(uuid.uuid4())
        try:
            return await self._route(request, request_id)
        except AgentCoreError as exc:
            return error_response(exc, request_id)
        except Exception:
            log.exception("internal error answering %s %s", request.method, request.url.path)
            return error_response(InternalServerException("Internal server error"), request_id)

    async def _route(self, request: Request, request_id: str) -> Response:
        method = request.method
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        parts = raw_path.decode("latin-1").split("?", 1)[0].split("/")
        if len(parts) == 4 and parts[0] == "" and parts[1] == "runtimes" and method == "POST":
            runtime_ref, operation = unquote(parts[2]), parts[3]
            if operation == "invocations":
                return await self.invoke_agent_runtime(request, runtime_ref, request_id)
            if operation == "stopruntimesession":
                return await self.stop_runtime_session(request, runtime_ref, request_id)
        if (method, request.url.path) in LOCAL_OPERATIONS:
            return await self._local(request, method)
        raise UnknownOperationException(f"No operation for {method} {request.url.path}")

    async def invoke_agent_runtime(
        self, request: Request, runtime_ref: str, request_id: str
    ) -> Response:
        """InvokeAgentRuntime: start the session if need be and pass the call to its agent."""
        runtime_id = runtime_id_from(runtime_ref, request.query_params)
        session_id = session_id_from(request)
        payload = await read_payload(request)
        self.runtime.faults.take("InvokeAgentRuntime", session_id)
        session = await self.runtime.begin_invocation(session_id, runtime_id)
        try:
            upstream = await self._send_to_agent(request, session, payload, request_id)
        except BaseException:
            self.runtime.end_invocation(session)
            raise
        headers = answer_headers(request, upstream, session_id, request_id)
        if _is_streamed(upstream):
            return StreamingResponse(
                self._pass_through(upstream, session),
                status_code=upstream.status_code,
                headers=headers,
            )
        try:
            body = await upstream.aread()
        finally:
            await upstream.aclose()
            self.runtime.end_invocation(session)
        return Response(body, status_code=upstream.status_code, headers=headers)

    async def _send_to_agent(
        self, request: Request, session: Session, payload: bytes, request_id: str
    ) -> httpx.Response:
        assert session.agent_url is not None
        # Forwarded as the bytes that came in: the server decoded them as Latin-1, and httpx
        # would refuse a str value outside ASCII (a session id in UTF-8, say) with a 500.
        forwarded = {
            name: value
            for name, value in request.headers.items()
            if name in FORWARDED_HEADERS or name.startswith(FORWARDED_PREFIXES)
        }
        forwarded[SESSION_HEADER] = session.session_id
        forwarded[REQUEST_ID_HEADER] = request_id
        headers = {
            name.encode("latin-1"): value.encode("latin-1") for name, value in forwarded.items()
        }
        upstream_request = self.runtime.http.build_request(
            "POST", f"{session.agent_url}/invocations", content=payload, headers=headers
        )
        try:
            upstream = await self.runtime.http.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("session %s: agent unreachable: %r", session.session_id, exc)
            raise RuntimeClientError(agent_error_message(502)) from exc
        if upstream.status_code >= 400:
            await upstream.aclose()
            raise RuntimeClientError(agent_error_message(upstream.status_code))
        return upstream

    async def _pass_through(
        self, upstream: httpx.Response, session: Session
    ) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            # Headers are gone already; all the caller can see is a cut stream.
            log.warning("session %s: stream from agent broke: %r", session.session_id, exc)
        finally:
            await upstream.aclose()
            self.runtime.end_invocation(session)

    async def stop_runtime_session(
        self, request: Request, runtime_ref: str, request_id: str
    ) -> Response:
        """StopRuntimeSession: end the session's agent process now."""
        runtime_id_from(runtime_ref, request.query_params)
        session_id = session_id_from(request)
        await request.body()  # {"clientToken": ...}: idempotency is not emulated
        self.runtime.faults.take("StopRuntimeSession", session_id)
        await self.runtime.stop_session(session_id)
        return Response(
            b"{}",
            media_type="application/json",
            headers={SESSION_HEADER: session_id, "x-amzn-RequestId": request_id},
        )

    async def _local(self, request: Request, method: str) -> Response:
        if method == "GET":
            return JSONResponse({"sessions": self.runtime.describe()})
        if method == "DELETE":
            self.runtime.faults.clear()
            return JSONResponse({"faults": []})
        try:
            spec = json.loads(await request.body())
            fault = Fault(
                error=str(spec["error"]),
                operation=spec.get("operation"),
                session_id=spec.get("sessionId"),
                count=int(spec.get("count", 1)),
                message=str(spec.get("message") or f"Injected {spec['error']}"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationException(
                'Expected {"error": <exception name>, "operation"?, "sessionId"?, "count"?, '
                f'"message"?}}: {exc}'
            ) from exc
        if fault.error not in MODELED_ERRORS:
            raise ValidationException(
                f"Unknown error {fault.error!r}; one of {', '.join(sorted(MODELED_ERRORS))}"
            )
        self.runtime.faults.add(fault)
        return JSONResponse({"faults": self.runtime.faults.describe()})


def error_response(exc: AgentCoreError, request_id: str) -> Response:
    """The error as botocore parses it: status, `x-amzn-ErrorType` and a JSON body."""
    return Response(
        json.dumps(exc.body()).encode(),
        status_code=exc.status,
        media_type="application/json",
        headers={"x-amzn-ErrorType": exc.code, "x-amzn-RequestId": request_id},
    )


def runtime_id_from(runtime_ref: str, query: object) -> str:
    """The runtime id named by the path (a full ARN, or an id with `accountId`)."""
    params = dict(query)  # type: ignore[call-overload]
    qualifier = params.get("qualifier")
    if qualifier is not None and not QUALIFIER.fullmatch(qualifier):
        raise ValidationException(
            f"1 validation error detected: Value '{qualifier}' at 'qualifier' failed to "
            "satisfy constraint: Member must be an endpoint name or a version number",
            "qualifier",
        )
    if runtime_ref.startswith("arn:"):
        match = RUNTIME_ARN.fullmatch(runtime_ref)
        if match is None:
            raise ValidationException(
                f"1 validation error detected: Value '{runtime_ref}' at 'agentRuntimeArn' "
                "failed to satisfy constraint: Member must satisfy regular expression pattern: "
                f"{RUNTIME_ARN.pattern.replace('(?P<id>', '(')}",
                "agentRuntimeArn",
            )
        return match.group("id")
    if not RUNTIME_ID.fullmatch(runtime_ref):
        raise ValidationException(
            f"Invalid agent runtime identifier '{runtime_ref}': give a runtime ARN, "
            "or an agent runtime id with the accountId query parameter",
            "agentRuntimeArn",
        )
    account = params.get("accountId")
    if account is None or not ACCOUNT_ID.fullmatch(account):
        raise ValidationException(
            "accountId (12 digits) is required when the agent runtime is given by id",
            "accountId",
        )
    return runtime_ref


def session_id_from(request: Request) -> str:
    """The session header, which must be 33 to 256 characters long."""
    session_id = request.headers.get(SESSION_HEADER)
    if session_id is None:
        raise ValidationException(
            "1 validation error detected: Value null at 'runtimeSessionId' failed to "
            "satisfy constraint: Member must not be null",
            "runtimeSessionId",
        )
    if len(session_id) < SESSION_ID_MIN:
        bound = f"greater than or equal to {SESSION_ID_MIN}"
    elif len(session_id) > SESSION_ID_MAX:
        bound = f"less than or equal to {SESSION_ID_MAX}"
    else:
        return session_id
    raise ValidationException(
        f"1 validation error detected: Value at 'runtimeSessionId' failed to satisfy "
        f"constraint: Member must have length {bound}",
        "runtimeSessionId",
    )


async def read_payload(request: Request) -> bytes:
    """The request body, refused past 100,000,000 bytes (read to the end, so the caller
    finishes sending and reads the error rather than a broken pipe)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_PAYLOAD_BYTES:
            chunks.append(chunk)
    if size > MAX_PAYLOAD_BYTES:
        raise ValidationException(
            "1 validation error detected: Value at 'payload' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_PAYLOAD_BYTES}",
            "payload",
        )
    return b"".join(chunks)


def answer_headers(
    request: Request, upstream: httpx.Response, session_id: str, request_id: str
) -> dict[str, str]:
    """Headers of a successful InvokeAgentRuntime answer, as boto3 maps them."""
    headers = {
        "Content-Type": upstream.headers.get("content-type", "application/json"),
        SESSION_HEADER: session_id,
        "x-amzn-RequestId": request_id,
    }
    for name in AGENT_ANSWER_HEADERS:
        if name in upstream.headers:
            headers[name] = upstream.headers[name]
    for name in ECHOED_HEADERS:
        value = upstream.headers.get(name) or request.headers.get(name)
        if value:
            headers[name] = value
    return headers


def _is_streamed(upstream: httpx.Response) -> bool:
    content_type = upstream.headers.get("content-type", "")
    return content_type.startswith("text/event-stream") or "content-length" not in upstream.headers
