"""How many Hypothesis examples a fuzz test runs: a short form in `make test`, a soak with slow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings

Test = TypeVar("Test", bound=Callable[..., Any])

# Examples that each start a process (a fresh session, a CLI run) cost about a second of CPU:
# `make test` runs a handful beside the pinned @example cases, which run in both forms, and
# `make test-all` runs the soak. Examples that cost milliseconds (one HTTP call to a running
# server) need no split.
PROCESS_EXAMPLES = 5
"""Generated examples per process-starting fuzz test in `make test`."""


def fuzz_settings(examples: int) -> settings:
    """Settings for a fuzz test over real processes: `examples` generated examples, no
    per-example deadline (a process start is slow and noisy on a loaded machine), and module
    fixtures allowed (the servers are shared between examples on purpose)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def soak(examples: int) -> Callable[[Test], Test]:
    """The long form of a fuzz test: `examples` examples, run only with the slow tests."""

    def mark(test: Test) -> Test:
        marked: Test = pytest.mark.slow(fuzz_settings(examples)(test))
        return marked

    return mark
