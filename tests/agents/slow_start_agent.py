"""The echo agent, after a start that takes `SLOW_START_S` seconds (default 3) before listening."""

import os
import runpy
import time
from pathlib import Path

time.sleep(float(os.environ.get("SLOW_START_S", "3")))
runpy.run_path(str(Path(__file__).with_name("echo_agent.py")), run_name="__main__")
