"""An agent that dies at start, as one with a missing dependency does."""

import sys

sys.stderr.write("crash_agent: failing at start on purpose\n")
sys.exit(3)
