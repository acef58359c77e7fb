"""Runs the test agent a session id names (`...-as-<agent>-...`), so one runtime can mix them."""

from __future__ import annotations

import os
import re
import runpy
from pathlib import Path

AGENTS = ("echo_agent", "streaming_agent", "busy_agent", "crash_agent", "hang_agent")
AGENTS += ("error_agent", "slow_start_agent")

match = re.search(r"-as-([a-z_]+)-", os.environ.get("AGENTCORE_SESSION_ID", ""))
name = match.group(1) if match and match.group(1) in AGENTS else "echo_agent"
runpy.run_path(str(Path(__file__).with_name(f"{name}.py")), run_name="__main__")
