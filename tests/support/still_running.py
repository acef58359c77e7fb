"""How long a synthetic job runs when a test needs it still running at the next poll."""

from __future__ import annotations

STILL_RUNNING_SECONDS = (2.0, 8.0)
"""Try a short job first; only when a loaded machine let it end before the poll (a lost race,
not a finding) try again with one long enough for any machine. The assertions are made on
the run that was still running, so each test checks what it did with one 8 s job, in a
quarter of the time on most runs."""
