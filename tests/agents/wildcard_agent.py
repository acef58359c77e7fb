"""An unmodified SDK agent asking for every interface (`app.run(host="0.0.0.0")`), as in Docker."""

from __future__ import annotations

from typing import Any

from bedrock_agentcore import BedrockAgentCoreApp

app = BedrockAgentCoreApp()


@app.entrypoint
def invoke(payload: dict[str, Any]) -> dict[str, Any]:
    return {"echo": payload}


if __name__ == "__main__":
    app.run(host="0.0.0.0")  # nosec B104 - the point of this agent
