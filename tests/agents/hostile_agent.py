"""An SDK agent whose every answer carries Rich markup, ANSI escapes and control characters."""

from __future__ import annotations

from typing import Any

from bedrock_agentcore import BedrockAgentCoreApp, RequestContext

MARKUP = "[link=https://evil.example/x]click here[/link] then [/bold] [red]"
ESCAPES = (
    "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example/y\x07hidden\x1b]8;;\x07 "
    "\x1b[2J\x07\x9b2J\u202eevil"
)

app = BedrockAgentCoreApp()


@app.entrypoint
def invoke(payload: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    if payload.get("action") == "cancel":
        return {"job_id": payload.get("job_id"), "status": f"{MARKUP}{ESCAPES}"}
    return {
        "job_id": f"job-{MARKUP}{ESCAPES}",
        "session_id": f"{context.session_id}{MARKUP}",
        "status": "RUNNING",
        "kind": f"{MARKUP}{ESCAPES}",
        "submitted_at": "2026-11-20T10:00:00.000Z",
    }


if __name__ == "__main__":
    app.run()
