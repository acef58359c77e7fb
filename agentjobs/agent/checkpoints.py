"""Checkpoints of resumable jobs: the state's encoding and bound, the fenced write, backoff."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from agentjobs.agent.adapters import AgentAdapters, with_store_retries
from agentjobs.agent.context import CheckpointError
from agentjobs.limits import MAX_CHECKPOINT_BYTES
from agentjobs.protocol import JobStatus, utc_now
from agentjobs.store import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

CHECKPOINT_EVENT_EVERY_S = 60.0
"""A job's history gets its first `checkpointed` event, then at most one a minute: a job that
checkpoints every second would otherwise fill its history with them."""

CHECKPOINT_EVENT_MAX_GAP_S = 3600.0
"""The gap between two `checkpointed` events doubles from CHECKPOINT_EVENT_EVERY_S up to this,
so that a 72-hour job's history stays within MAX_EVENTS_PER_JOB: about 15 such events per
8-hour session."""


def next_checkpoint_event_gap(noted: int) -> float:
    """How long after its last `checkpointed` event a job's next one may be, when `noted` have
    been written in this process."""
    return min(
        CHECKPOINT_EVENT_EVERY_S * 2.0 ** min(max(noted - 1, 0), 30), CHECKPOINT_EVENT_MAX_GAP_S
    )


RETRY_BASE_S = 1.0
"""The backoff before the first in-place retry; it doubles with each attempt."""

RETRY_MAX_S = 60.0
"""The longest backoff between two tries of a job."""

STORE_ATTEMPTS = 3
STORE_FIRST_DELAY_S = 0.2


class JobMovedError(Exception):
    """The job's record no longer gives it to this session (resumed elsewhere) or it ended:
    this process must stop it and store nothing."""


def encode_state(state: Any) -> str:
    """A checkpoint's state as compact JSON; CheckpointError naming the type JSON cannot carry,
    or the size and the limit when it is too large."""
    try:
        text = json.dumps(state, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise CheckpointError(
            f"the checkpoint state must be plain JSON (dict, list, str, int, float, bool or "
            f"None, no NaN or infinity): {_unencodable(state, exc)}"
        ) from None
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise CheckpointError(
            "the checkpoint state holds text that is not valid UTF-8 (such as a lone surrogate)"
        ) from None
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"the checkpoint state is {size} bytes as JSON; at most {MAX_CHECKPOINT_BYTES} are "
            "kept: store bulky data in your own S3 objects and checkpoint their keys"
        )
    return text


def _unencodable(state: Any, exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    if isinstance(exc, ValueError):
        return "it holds NaN or infinity"
    found = _first_foreign(state)
    return f"it holds a {found}" if found else "it holds a value JSON cannot carry"


def _first_foreign(value: Any) -> str | None:
    """The type name of the first value in `value` that JSON cannot carry."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str | int | float | bool) and key is not None:
                    return f"{type(key).__name__} as a key"
                stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif not (item is None or isinstance(item, str | int | float | bool)):
            return type(item).__name__
    return None


def retry_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """The backoff after try `attempt` failed: min(RETRY_BASE_S * 2**(attempt-1), RETRY_MAX_S),
    of which a random half is jitter, so that jobs failing together do not retry together."""
    ceiling = min(RETRY_BASE_S * 2.0 ** min(max(attempt - 1, 0), 30), RETRY_MAX_S)
    return ceiling * (0.5 + 0.5 * rand())


class CheckpointWriter:
    """Writes a job's checkpoint object, only while the job's record still gives it to the
    writing session (fencing): a process whose job has moved on never overwrites the new one's."""

    def __init__(self, adapters: AgentAdapters) -> None:
        self._adapters = adapters

    def write(self, job_id: str, session_id: str, attempt: int, state_text: str | None) -> str:
        """Store the checkpoint (no `state` when `state_text` is None: it records the attempt
        only); its time. JobMovedError when the record says the job moved or ended;
        CheckpointError when the stores cannot be reached."""
        self._fence(job_id, session_id)
        at = utc_now()
        checkpoint: dict[str, Any] = {
            "job_id": job_id,
            "attempt": attempt,
            "session_id": session_id,
            "at": at,
        }
        if state_text is not None:
            checkpoint["state"] = json.loads(state_text)
        self._with_retries(job_id, lambda: self._adapters.results().put_checkpoint(checkpoint))
        return at

    def _fence(self, job_id: str, session_id: str) -> None:
        try:
            record = self._with_retries(job_id, lambda: self._adapters.jobs().get(job_id))
        except ValueError:
            log.error("job %s: its record is malformed; the job stops here", job_id)
            raise JobMovedError from None
        if record is None or record.status != JobStatus.RUNNING:
            raise JobMovedError
        if record.active_session_id != session_id:
            log.info(
                "job %s now runs in session %s; this session (%s) stops it",
                job_id,
                record.active_session_id,
                session_id,
            )
            raise JobMovedError

    def _with_retries(self, job_id: str, call: Callable[[], T]) -> T:
        try:
            return with_store_retries(
                job_id, call, attempts=STORE_ATTEMPTS, first_delay_s=STORE_FIRST_DELAY_S
            )
        except StoreError as exc:
            raise CheckpointError(
                f"the checkpoint could not be stored ({exc}); the job may go on and "
                "checkpoint again later"
            ) from exc
