"""Who may read or cancel a job: its owner anywhere; in its own session, a caller naming no user."""

from __future__ import annotations

import pytest

from agentjobs.protocol import JobStatus
from agentjobs.record import JobRecord, visible_to

SESSION = "s" * 40
OTHER_SESSION = "t" * 40


def _record(owner: str | None) -> JobRecord:
    return JobRecord(
        job_id="a" * 32,
        session_id=SESSION,
        kind="synthetic",
        status=JobStatus.RUNNING,
        submitted_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        max_runtime_s=60.0,
        deadline_at="2026-01-01T00:01:00.000Z",
        owner=owner,
    )


@pytest.mark.parametrize(
    ("owner", "session", "caller", "visible"),
    [
        (None, SESSION, None, True),  # the session that ran an unowned job
        (None, OTHER_SESSION, None, False),  # another session
        (None, SESSION, "alice", True),  # a user in the job's own session, job unowned
        (None, OTHER_SESSION, "alice", False),
        ("alice", OTHER_SESSION, "alice", True),  # the owner, from anywhere
        ("alice", SESSION, None, True),  # the poller (no user) in the job's session
        ("alice", SESSION, "bob", False),  # another user, even in the job's session
        ("alice", OTHER_SESSION, None, False),
        ("alice", OTHER_SESSION, "bob", False),
    ],
)
def test_a_job_is_visible_to_its_owner_or_its_own_session_never_another_user(
    owner: str | None, session: str, caller: str | None, visible: bool
) -> None:
    assert visible_to(_record(owner), session, caller) is visible
