"""An SDK agent whose answer is a stream of server-sent events, one every `gap_s` seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from bedrock_agentcore import BedrockAgentCoreApp

app = BedrockAgentCoreApp()


@app.entrypoint
def invoke(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    gap_s = float(payload.get("gap_s", 0.0))
    for index in range(int(payload.get("events", 3))):
        if index:
            time.sleep(gap_s)
        yield {"event": index, "sent_at": time.time()}


if __name__ == "__main__":
    app.run()
