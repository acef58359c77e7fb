"""Start the job agent: serves /invocations and /ping on 0.0.0.0:${PORT:-8080}."""

from __future__ import annotations

import logging
import os

# Only definitions at import time: a spawned job process imports this module again, and
# /ping must answer within 2 s of start, so the server's imports wait for main().


def main() -> None:
    """Build the app from the environment and serve it until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from jobagent.server import build_app  # noqa: PLC0415

    port = int(os.environ.get("PORT", "8080"))
    # 0.0.0.0 always: AgentCore reaches the agent from outside its network namespace.
    build_app().run(port=port, host="0.0.0.0", timeout_graceful_shutdown=5)  # noqa: S104 # nosec B104


if __name__ == "__main__":
    main()
