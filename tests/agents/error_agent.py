"""An SDK agent whose handler raises, so the SDK answers 500."""

from __future__ import annotations

from typing import Any

from bedrock_agentcore import BedrockAgentCoreApp

app = BedrockAgentCoreApp()


@app.entrypoint
def invoke(payload: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("error_agent fails every call on purpose")


if __name__ == "__main__":
    app.run()
