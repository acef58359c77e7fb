"""The poller's lease on a job and the writes under it.

One module past 400 lines on purpose: every write here is conditional on the same lease
and status clauses (`Lease._update`, `_terminal_condition`), and split apart they would be
read, and changed, in two places."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agentjobs import schema
from agentjobs.limits import (
    MAX_ERROR_CODE_CHARS,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_POLL_ERROR_CHARS,
    MAX_PROGRESS_MESSAGE_CHARS,
    cap_job_text,
)
from agentjobs.protocol import TERMINAL_STATUSES, JobStatus, encode_json
from agentjobs.record import NOTIFY_ERROR, JobError, JobRecord, Progress, StoredJob, read_item
from agentjobs.store import JobStore, TransitionConflictError, table_errors

LEASE_HOLDER = "lease_holder"
LEASE_UNTIL = "lease_until"
"""Epoch milliseconds until which `lease_holder` alone may change the job (see Lease.take)."""
LAST_POLL_ERROR = "last_poll_error"

_REFUSED = "the job table refused the update"


@dataclass(frozen=True)
class Ending:
    """How a job ends: its terminal status and what the record keeps of it.

    A SUCCEEDED job keeps `result_uri` when given, else `result` inline: the caller decides
    where a large result goes (ResultStore.put_result). `finished_at` is the agent's time when
    it gave a valid one; the error and progress messages are cut to their limits on writing."""

    status: JobStatus
    result: Any = None
    result_uri: str | None = None
    error: JobError | None = None
    finished_at: str | None = None
    progress: Progress | None = None
    attempt: int | None = None
    """The attempt that ended, when it is later than the record's (the agent retried the job
    in its process since the poller last wrote it)."""

    @classmethod
    def failed(cls, error: JobError, *, finished_at: str | None = None) -> Ending:
        """A job ending FAILED for `error`."""
        return cls(JobStatus.FAILED, error=error, finished_at=finished_at)


@dataclass
class Lease:
    """One poller's hold on one job. Every write through it is conditional on `holder` still
    holding the job, so two overlapping ticks never both act on a job, and on the status it
    expects, so a job moves out of RUNNING exactly once. `held` turns False once a write gave
    the lease back or found it lost."""

    store: JobStore
    job_id: str
    holder: str
    held: bool = field(default=True)

    @classmethod
    def take(
        cls, store: JobStore, job_id: str, holder: str, lease_s: float
    ) -> tuple[Lease, StoredJob] | None:
        """Take the job for `lease_s` seconds; the lease and the job as it is now (a strongly
        consistent read); None when another holder's lease is live or the job needs nothing."""
        now_ms = int(time.time() * 1000)
        try:
            with table_errors("the job table refused the lease", conflict="leased elsewhere"):
                answer = store.dynamodb.update_item(
                    TableName=store.table_name,
                    Key=store.key(job_id),
                    UpdateExpression="SET #lh = :me, #lu = :until",
                    ConditionExpression=(
                        "attribute_exists(job_id) AND attribute_exists(#att) AND "
                        "(attribute_not_exists(#lu) OR #lu < :now OR #lh = :me)"
                    ),
                    ExpressionAttributeNames={
                        "#lh": LEASE_HOLDER,
                        "#lu": LEASE_UNTIL,
                        "#att": schema.ATTENTION_KEY,
                    },
                    ExpressionAttributeValues={
                        ":me": {"S": holder},
                        ":until": {"N": str(now_ms + int(lease_s * 1000))},
                        ":now": {"N": str(now_ms)},
                    },
                    ReturnValues="ALL_NEW",
                )
        except TransitionConflictError:
            return None
        return cls(store, job_id, holder), read_item(answer["Attributes"])

    def release(self) -> None:
        """Give the job back at once, so that the next tick (or a fast-path call) need not
        wait for the lease to expire. A lease already given back or lost is not an error."""
        if not self.held:
            return
        try:
            self._update("REMOVE #lh, #lu", names={"#lu": LEASE_UNTIL}, returns="NONE")
        except TransitionConflictError:
            return
        self.held = False

    def record_progress(
        self,
        progress: Progress,
        seen_at: str,
        *,
        attempt: int | None = None,
        checkpoint_at: str | None = None,
    ) -> None:
        """A RUNNING answer: store progress and the last-seen time (and a resumable job's
        attempt and last checkpoint time, when given), clear the failure count and give the
        lease back, in one write. Only while the job is RUNNING."""
        sets, names, values = _seen_running(progress, seen_at, attempt, checkpoint_at)
        self._update(
            f"SET {', '.join(sets)} REMOVE #lh, #lu, #lpe",
            condition="#s = :running",
            names={"#s": "status", **names},
            values={**values, ":running": {"S": str(JobStatus.RUNNING)}},
            returns="NONE",
        )
        self.held = False

    def record_resume(
        self, *, session_id: str, at: str, attempt: int, seen: StoredJob
    ) -> StoredJob:
        """Give a resumable RUNNING job a fresh session: its run session, when it got it, its
        attempt, `resume_pending` (until the agent takes the job there) and a fresh failure
        count, in one write. Conditional on the job still being where `seen` had it (same
        active session, same attempt), so that two pollers never start two attempts.
        Returns the job as stored."""
        old = seen.run_session_id
        seen_attempt = seen.attempt if isinstance(seen, JobRecord) else 1
        return read_item(
            self._update(
                "SET run_session_id = :sid, run_started_at = :at, #att = :attempt, "
                "resume_pending = :true, poll_failures = :zero, updated_at = :at "
                "REMOVE #lpe",
                condition=(
                    "#s = :running AND resumable = :true AND "
                    "(attribute_not_exists(#att) OR #att = :seen_attempt) AND "
                    + (
                        "run_session_id = :old"
                        if old is not None
                        else "attribute_not_exists(run_session_id)"
                    )
                ),
                names={"#s": "status", "#att": "attempt", "#lpe": LAST_POLL_ERROR},
                values={
                    ":sid": {"S": session_id},
                    ":at": {"S": at},
                    ":attempt": {"N": str(attempt)},
                    ":seen_attempt": {"N": str(seen_attempt)},
                    ":true": {"BOOL": True},
                    ":zero": {"N": "0"},
                    ":running": {"S": str(JobStatus.RUNNING)},
                    **({":old": {"S": old}} if old is not None else {}),
                },
            )
        )

    def record_resume_taken(
        self,
        session_id: str,
        seen_at: str,
        *,
        progress: Progress | None = None,
        attempt: int | None = None,
        checkpoint_at: str | None = None,
    ) -> None:
        """The fresh session took the job: clear `resume_pending`. With the job's progress (it
        answered RUNNING), store it as a RUNNING answer would and give the lease back in the
        same write; without (it had already ended there), keep the lease to collect it."""
        sets = ["updated_at = :at"]
        names: dict[str, str] = {"#s": "status"}
        values: dict[str, Any] = {":at": {"S": seen_at}}
        removes = ["resume_pending"]
        if progress is not None:
            sets, names, values = _seen_running(progress, seen_at, attempt, checkpoint_at)
            names["#s"] = "status"
            removes += ["#lh", "#lu", "#lpe"]
        self._update(
            f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            condition="#s = :running AND run_session_id = :sid",
            names=names,
            values={
                **values,
                ":sid": {"S": session_id},
                ":running": {"S": str(JobStatus.RUNNING)},
            },
            returns="NONE",
        )
        if progress is not None:
            self.held = False

    def record_poll_failure(self, reason: str, at: str) -> int:
        """Count one failed poll of a RUNNING job and keep its reason; return the count."""
        attributes = self._update(
            "ADD poll_failures :one SET #lpe = :why, updated_at = :at",
            condition="#s = :running",
            names={"#s": "status", "#lpe": LAST_POLL_ERROR},
            values={
                ":one": {"N": "1"},
                ":why": {"S": cap_job_text(reason, MAX_POLL_ERROR_CHARS)},
                ":at": {"S": at},
                ":running": {"S": str(JobStatus.RUNNING)},
            },
            returns="UPDATED_NEW",
        )
        return int(attributes.get("poll_failures", {}).get("N", "1"))

    def finish(self, ending: Ending, *, finished_at: str, at: str) -> StoredJob:
        """Move an unfinished job to its terminal status, once; return the job as stored.

        Raises TransitionConflictError when the job is already terminal or the lease was
        lost, RecordRefusedError when the table refuses the record for its content."""
        if ending.status not in TERMINAL_STATUSES:
            raise ValueError(f"{ending.status} is not a terminal status")
        sets = ["#s = :status", "finished_at = :finished", "updated_at = :at"]
        removes = [LAST_POLL_ERROR]
        values: dict[str, Any] = {
            ":status": {"S": str(ending.status)},
            ":finished": {"S": finished_at},
            ":at": {"S": at},
        }
        if ending.status == JobStatus.SUCCEEDED:
            if ending.result_uri is not None:
                sets.append("result_uri = :uri")
                values[":uri"] = {"S": ending.result_uri}
                removes.append("#result")
            else:
                sets.append("#result = :result")
                values[":result"] = {"S": encode_json(ending.result)}
        if ending.error is not None:
            sets.append("#error = :error")
            values[":error"] = _error_value(ending.error)
        if ending.progress is not None:
            sets.append("progress = :p")
            values[":p"] = _progress_value(ending.progress)
        if ending.attempt is not None:
            sets.append("#attempt = :attempt")
            values[":attempt"] = {"N": str(ending.attempt)}
        values.update(_terminal_values())
        written = " ".join(sets + removes)
        return read_item(
            self._update(
                f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                condition=f"(attribute_not_exists(#s) OR NOT {_terminal_condition()})",
                names={
                    name: attribute
                    for name, attribute in (
                        ("#s", "status"),
                        ("#result", "result"),
                        ("#error", "error"),
                        ("#attempt", "attempt"),
                    )
                    if name == "#s" or name in written
                },
                values=values,
            )
        )

    def record_notified(self, at: str, *, release: bool = False) -> StoredJob:
        """Record that a terminal job's notification was published (the first time wins);
        with `release`, give the lease back in the same write (the job now only waits for
        its shared session to be stopped)."""
        job = read_item(
            self._update(
                "SET notified_at = if_not_exists(notified_at, :at), updated_at = :at"
                + (" REMOVE #lh, #lu" if release else ""),
                condition=_terminal_condition(),
                names={"#s": "status", **({"#lu": LEASE_UNTIL} if release else {})},
                values={":at": {"S": at}, **_terminal_values()},
            )
        )
        self.held = not release
        return job

    def record_notify_refused(
        self, error: JobError, at: str, *, release: bool = False
    ) -> StoredJob:
        """Record that SNS refused every form of a terminal job's notification, so that the
        job is closed like a notified one instead of being published again on every tick.
        The job's status and outcome stay as they are; `notify_error` says what happened."""
        job = read_item(
            self._update(
                "SET #ne = if_not_exists(#ne, :e), updated_at = :at"
                + (" REMOVE #lh, #lu" if release else ""),
                condition=f"{_terminal_condition()} AND attribute_not_exists(notified_at)",
                names={
                    "#s": "status",
                    "#ne": NOTIFY_ERROR,
                    **({"#lu": LEASE_UNTIL} if release else {}),
                },
                values={":e": _error_value(error), ":at": {"S": at}, **_terminal_values()},
            )
        )
        self.held = not release
        return job

    def record_session_stopped(self, at: str) -> None:
        """Record that a terminal, notified job's session is stopped, and drop the job from
        the attention index (and the lease): nothing is left to do for it."""
        self._update(
            "SET session_stopped_at = if_not_exists(session_stopped_at, :at), updated_at = :at "
            "REMOVE #att, #lh, #lu",
            condition=f"{_terminal_condition()} AND {_NOTIFICATION_DONE}",
            names={"#s": "status", "#att": schema.ATTENTION_KEY, "#lu": LEASE_UNTIL},
            values={":at": {"S": at}, **_terminal_values()},
            returns="NONE",
        )
        self.held = False

    def _update(
        self,
        expression: str,
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        returns: str = "ALL_NEW",
    ) -> dict[str, Any]:
        conflict = f"job {self.job_id} changed under this poller (lease lost or already moved)"
        try:
            with table_errors(_REFUSED, conflict=conflict):
                answer = self.store.dynamodb.update_item(
                    TableName=self.store.table_name,
                    Key=self.store.key(self.job_id),
                    UpdateExpression=expression,
                    ConditionExpression="#lh = :holder"
                    + (f" AND {condition}" if condition else ""),
                    ExpressionAttributeNames={"#lh": LEASE_HOLDER, **(names or {})},
                    ExpressionAttributeValues={":holder": {"S": self.holder}, **(values or {})},
                    ReturnValues=returns,
                )
        except TransitionConflictError:
            # The lease expired and another poller moved the job: it is theirs now.
            self.held = False
            raise
        attributes: dict[str, Any] = answer.get("Attributes", {})
        return attributes


def close_final(store: JobStore, job_id: str, holder: str, at: str) -> None:
    """Record a terminal, notified job's session as stopped and drop the job from the
    attention index, in one write and without taking its lease first: only stopping the
    session was left, and its caller has stopped it. Refused (TransitionConflictError) while
    another poller holds a live lease, or when the job is not final or is gone from the index
    already."""
    now_ms = int(time.time() * 1000)
    conflict = f"job {job_id} is not final, already closed, or leased by another poller"
    with table_errors(_REFUSED, conflict=conflict):
        store.dynamodb.update_item(
            TableName=store.table_name,
            Key=store.key(job_id),
            UpdateExpression=(
                "SET session_stopped_at = if_not_exists(session_stopped_at, :at), "
                "updated_at = :at REMOVE #att, #lh, #lu"
            ),
            ConditionExpression=(
                f"{_terminal_condition()} AND {_NOTIFICATION_DONE} AND "
                "attribute_exists(#att) AND "
                "(attribute_not_exists(#lu) OR #lu < :now OR #lh = :me)"
            ),
            ExpressionAttributeNames={
                "#s": "status",
                "#att": schema.ATTENTION_KEY,
                "#lh": LEASE_HOLDER,
                "#lu": LEASE_UNTIL,
            },
            ExpressionAttributeValues={
                ":at": {"S": at},
                ":me": {"S": holder},
                ":now": {"N": str(now_ms)},
                **_terminal_values(),
            },
        )


_NOTIFICATION_DONE = f"(attribute_exists(notified_at) OR attribute_exists({NOTIFY_ERROR}))"
"""A terminal job needs no more publishing: it was notified, or SNS refused it for good."""

_TERMINAL = sorted(str(t) for t in TERMINAL_STATUSES)


def _terminal_condition() -> str:
    return f"#s IN ({', '.join(f':t{i}' for i in range(len(_TERMINAL)))})"


def _terminal_values() -> dict[str, Any]:
    return {f":t{i}": {"S": name} for i, name in enumerate(_TERMINAL)}


def _seen_running(
    progress: Progress, seen_at: str, attempt: int | None, checkpoint_at: str | None
) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """The SET clauses, names and values of a RUNNING answer's write."""
    sets = ["progress = :p", "last_seen_at = :at", "updated_at = :at", "poll_failures = :zero"]
    names = {"#lu": LEASE_UNTIL, "#lpe": LAST_POLL_ERROR}
    values: dict[str, Any] = {
        ":p": _progress_value(progress),
        ":at": {"S": seen_at},
        ":zero": {"N": "0"},
    }
    if attempt is not None:
        sets.append("#attempt = :attempt")
        names["#attempt"] = "attempt"
        values[":attempt"] = {"N": str(attempt)}
    if checkpoint_at is not None:
        sets.append("checkpoint_at = :cp")
        values[":cp"] = {"S": checkpoint_at}
    return sets, names, values


def _progress_value(progress: Progress) -> dict[str, Any]:
    wire = progress.to_wire()
    percent = wire["percent"]
    number = repr(int(percent)) if float(percent).is_integer() else repr(float(percent))
    message = cap_job_text(wire["message"], MAX_PROGRESS_MESSAGE_CHARS)
    return {"M": {"percent": {"N": number}, "message": {"S": message}}}


def _error_value(error: JobError) -> dict[str, Any]:
    code = cap_job_text(error.code, MAX_ERROR_CODE_CHARS)
    message = cap_job_text(error.message, MAX_ERROR_MESSAGE_CHARS)
    return {"M": {"code": {"S": code}, "message": {"S": message}}}
