"""An SDK agent that stays HealthyBusy for `busy_s` seconds after each call (an async task)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from bedrock_agentcore import BedrockAgentCoreApp

app = BedrockAgentCoreApp()


def _work(task_id: int, seconds: float) -> None:
    try:
        time.sleep(seconds)
    finally:
        app.complete_async_task(task_id)


@app.entrypoint
def invoke(payload: dict[str, Any]) -> dict[str, Any]:
    seconds = float(payload.get("busy_s", 0))
    if seconds > 0:
        task_id = app.add_async_task("busy", {"seconds": seconds})
        threading.Thread(target=_work, args=(task_id, seconds), daemon=True).start()
    return {"pid": os.getpid(), "busy_s": seconds}


if __name__ == "__main__":
    app.run()
