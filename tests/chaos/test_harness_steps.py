"""The harness finds the poller's steps by the text of its writes: the text the poller writes."""

from __future__ import annotations

from pathlib import Path

import jobpoller
from tests.chaos.harness.faults import STEPS, step_of

POLLER_SOURCE = "\n".join(
    path.read_text(encoding="utf-8")
    for path in sorted(Path(jobpoller.__file__).parent.glob("*.py"))
)


def test_every_step_marker_is_written_by_the_poller() -> None:
    # A marker the poller no longer writes would silently stop the crashes armed at its step.
    missing = {
        step: marker
        for step, (_, marker) in STEPS.items()
        if marker is not None and marker not in POLLER_SOURCE
    }
    assert missing == {}


def test_a_call_is_matched_to_its_step_by_operation_and_marker() -> None:
    lease = {"UpdateExpression": "SET #lh = :me, #lu = :until"}
    assert step_of("dynamodb.UpdateItem", lease) == "lease"
    assert step_of("sns.Publish", {}) == "publish"
    assert step_of("dynamodb.UpdateItem", {"UpdateExpression": "SET other = :x"}) is None
    assert step_of("dynamodb.GetItem", lease) is None
