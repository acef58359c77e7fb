"""An unmodified SDK agent (`app.run()`, fixed port 8080): echoes the payload and what it saw."""

from __future__ import annotations

import os
from typing import Any

from bedrock_agentcore import BedrockAgentCoreApp, RequestContext

app = BedrockAgentCoreApp()
# Process memory: lost when the session is recycled, which the tests check.
calls: list[Any] = []


@app.entrypoint
def invoke(payload: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    calls.append(payload)
    return {
        "echo": payload,
        "session_id": context.session_id,
        # Every header the agent received, to check what the runtime forwards.
        "headers": dict(context.request.headers) if context.request is not None else {},
        "pid": os.getpid(),
        "calls": len(calls),
    }


if __name__ == "__main__":
    app.run()
