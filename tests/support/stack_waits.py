"""Waits on a running local stack: for a condition, and for its poller to have passed over jobs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from testbed.local_stack import LocalStack


def wait_until(check: Callable[[], Any], what: str, timeout_s: float = 90.0) -> Any:
    """Call `check` until it returns something truthy; that value. Fails naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def record_item(stack: LocalStack, job_id: str) -> dict[str, Any]:
    """The job's item in the stack's job table, read consistently."""
    item: dict[str, Any] = stack.client("dynamodb").get_item(
        TableName=stack.values()["JOBS_TABLE"], Key={"job_id": {"S": job_id}}, ConsistentRead=True
    )["Item"]
    return item


def poller_done_with(stack: LocalStack, job_ids: Iterable[str], timeout_s: float = 60.0) -> None:
    """Return once every job is out of the poller's attention index (collected, notified, its
    session stopped) and a whole scheduled tick has run since. A second notification of one
    of them could only come from a later pass: by then it is in the inbox (moto delivers a
    publish to the queue before the publish returns, and a tick is logged after it returns).
    A condition, not a fixed sleep: as long as the poller takes, and no longer."""
    for job_id in job_ids:

        def finished(job_id: str = job_id) -> bool:
            return "attention" not in record_item(stack, job_id)

        wait_until(finished, f"the poller never finished with job {job_id}", timeout_s)
    # The first tick counted may have begun before the jobs were done; the second did not.
    ticks = stack.ticks_done()
    wait_until(lambda: stack.ticks_done() >= ticks + 2, "the schedule stopped ticking", timeout_s)
