"""Running one job in a child process: the child's entry point and the parent's handle on it."""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from agentjobs.agent.checkpoints import encode_state
from agentjobs.agent.context import CheckpointError, JobFailed, JobStopped
from agentjobs.agent.declarations import NOT_JSON_MESSAGE, RetryOn, call_job, plain_result

log = logging.getLogger(__name__)

# Spawn, never fork: the server is threaded, and a forked child inherits locks held by
# other threads at the moment of the fork.
_SPAWN = multiprocessing.get_context("spawn")
_PARENT_CHECK_S = 0.5
_STOP_GRACE_S = 2.0
RESUMABLE_STOP_GRACE_S = 3.0
"""How long a stopped resumable job's process may take to store a last checkpoint and end."""
JOB_NICENESS = 10

CRASH_MESSAGE = "the job's process failed unexpectedly"


class _PipeContext:
    """The JobContext of a job in a child process: progress and checkpoints go up the pipe (a
    checkpoint waits for the parent's word that it is stored). Stops arrive as SIGTERM from the
    parent (raising JobStopped in a resumable job), so there is nothing to check here."""

    def __init__(self, conn: Connection, work: ChildWork) -> None:
        self._conn = conn
        self._work = work
        self._job_id = work.job_id
        self._session_id = work.session_id
        self._resumed = json.loads(work.state_text) if work.state_text is not None else None

    @property
    def attempt(self) -> int:
        return self._work.attempt

    @property
    def resumed_state(self) -> Any:
        return self._resumed

    def checkpoint(self, state: Any) -> None:
        if not self._work.resumable:
            raise CheckpointError(not_resumable_message(self._work.name))
        text = encode_state(state)
        with _STOP.held():
            self._conn.send(("checkpoint", text))
            reply, message = self._conn.recv()
        if reply == "stopped":
            raise JobStopped
        if reply == "error":
            raise CheckpointError(str(message))

    @property
    def job_id(self) -> str:
        return self._job_id

    @property
    def session_id(self) -> str:
        return self._session_id

    def progress(self, percent: float, message: str) -> None:
        self._conn.send(("progress", float(percent), str(message)))

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def check_stop(self) -> None:
        return None


def not_resumable_message(name: str) -> str:
    """Why a job not declared resumable cannot checkpoint, and what to write instead."""
    return (
        f"job {name!r} is not declared resumable, so it has no checkpoints: declare it "
        f"@app.job({name!r}, resumable=True)"
    )


class _StopSignal:
    """SIGTERM in a resumable job's process: JobStopped once, where the job is, except in the
    middle of a message to the parent, which it would leave half-sent: there it waits until
    the message is whole. Later signals are ignored (the session's stop signals the whole
    process group, and the parent asks again); SIGKILL ends a child that overstays."""

    def __init__(self) -> None:
        self._fired = False
        self._held = False
        self._pending = False

    def handle(self, signum: int, frame: object) -> None:
        if self._fired:
            return
        self._fired = True
        if self._held:
            self._pending = True
            return
        raise JobStopped

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self._held = True
        try:
            yield
        finally:
            self._held = False
        if self._pending:
            self._pending = False
            raise JobStopped


_STOP = _StopSignal()


def _exit_when_orphaned(parent_pid: int) -> None:
    # Lifespan shutdown terminates children; this covers a parent that was SIGKILLed.
    while True:
        time.sleep(_PARENT_CHECK_S)
        if os.getppid() != parent_pid:
            os._exit(3)


@dataclass(frozen=True)
class ChildWork:
    """What a child process runs: the job function (pickled by reference, so the child
    imports its module) and its validated parameters."""

    func: Callable[..., Any]
    takes_context: bool
    params: Any
    job_id: str
    session_id: str
    name: str = ""
    resumable: bool = False
    retry_on: RetryOn = ()
    attempt: int = 1
    state_text: str | None = None
    """The last checkpoint's state, encoded: the attempt's `resumed_state`."""


def child_main(conn: Connection, work: ChildWork, parent_pid: int) -> None:
    """Run one job and send its progress and its end up `conn`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    # Jobs yield the CPU to the server: a slow /ping gets a session marked unhealthy.
    with contextlib.suppress(OSError):
        os.nice(JOB_NICENESS)
    if work.resumable:
        # Stopped by SIGTERM, a resumable job sees JobStopped and may store a last checkpoint.
        signal.signal(signal.SIGTERM, _STOP.handle)
    context = _PipeContext(conn, work)
    try:
        ended = _run(work, context)
        with contextlib.suppress(JobStopped), _STOP.held():
            conn.send(ended)
    finally:
        conn.close()


def _run(work: ChildWork, context: _PipeContext) -> tuple[str, Any]:
    try:
        returned = call_job(work.func, work.takes_context, work.params, context)
    except JobFailed as exc:
        return ("failed", str(exc.message))
    except JobStopped:
        return ("stopped", "")
    except work.retry_on as exc:
        log.warning("job %s: attempt %d failed (%s)", work.job_id, work.attempt, type(exc).__name__)
        return ("retry", (type(exc).__name__, str(exc)))
    except Exception:
        log.exception("job %s crashed in its child process", work.job_id)
        return ("crashed", CRASH_MESSAGE)
    try:
        return ("result", plain_result(returned))
    except (TypeError, ValueError):
        log.error("job %s returned a %s, which JSON cannot carry", work.job_id, type(returned))
        return ("not_json", NOT_JSON_MESSAGE)


@dataclass
class ChildOutcome:
    """How the child ended: `value` on success, else the failure's code and message."""

    value: Any = None
    failed: str | None = None
    not_json: str | None = None
    crashed: str | None = None
    retry: tuple[str, str] | None = None
    """A `retry_on` exception ended the try: its type's name and its message."""
    killed_by: int | None = None
    """The signal that ended the child, when one did without the parent asking (`crashed`
    says so too): the session's stop, an OOM kill, a kill by hand."""


class ChildJob:
    """A job's child process, seen from the parent."""

    def __init__(self, name: str, work: ChildWork) -> None:
        # Duplex: a checkpoint waits for the parent's answer on the same pipe.
        reader, writer = _SPAWN.Pipe(duplex=True)
        self._reader = reader
        self._resumable = work.resumable
        self._terminated = False
        self._stop_lock = threading.Lock()
        self._process: BaseProcess = _SPAWN.Process(
            target=child_main,
            args=(writer, work, os.getpid()),
            name=f"job-{name}",
            daemon=True,
        )
        self._process.start()
        # The parent's copy of the write end must go, or EOF never comes when the child dies.
        writer.close()

    @property
    def pid(self) -> int | None:
        """The child's process id."""
        return self._process.pid

    def follow(
        self,
        on_progress: Callable[[float, str], None],
        should_stop: Callable[[], bool],
        poll_s: float = 0.2,
        on_checkpoint: Callable[[str], tuple[str, str | None]] | None = None,
    ) -> ChildOutcome:
        """Relay progress (and checkpoints, answering each with `on_checkpoint`'s reply) until
        the child ends; raise JobStopped (after stopping the child) as soon as `should_stop`
        says so. A resumable job is first sent SIGTERM and given RESUMABLE_STOP_GRACE_S to
        store a last checkpoint."""
        try:
            return self._relay(on_progress, should_stop, poll_s, on_checkpoint)
        finally:
            self.stop()
            self._reader.close()

    def request_stop(self) -> None:
        """Ask the child to stop: SIGTERM once for a resumable job (its last checkpoint is
        relayed by `follow`), else terminate it at once. Safe from any thread."""
        if not self._resumable:
            self.stop()
            return
        with self._stop_lock:
            if not self._terminated and self._process.is_alive():
                self._terminated = True
                self._process.terminate()

    def _relay(
        self,
        on_progress: Callable[[float, str], None],
        should_stop: Callable[[], bool],
        poll_s: float,
        on_checkpoint: Callable[[str], tuple[str, str | None]] | None,
    ) -> ChildOutcome:
        outcome = ChildOutcome()
        ended = False
        stop_by: float | None = None
        while not ended:
            if should_stop():
                if not self._resumable:
                    raise JobStopped
                if stop_by is None:
                    stop_by = time.monotonic() + RESUMABLE_STOP_GRACE_S
                    self.request_stop()
                elif time.monotonic() >= stop_by:
                    raise JobStopped
            ready = multiprocessing.connection.wait([self._reader], timeout=poll_s)
            if not ready:
                continue
            try:
                message = self._reader.recv()
            except (EOFError, OSError):
                break
            ended = self._take(message, outcome, on_progress, on_checkpoint)
        self._process.join(_STOP_GRACE_S)
        if not ended and should_stop():
            raise JobStopped  # it died because it was told to
        if not ended:
            code = self._process.exitcode
            outcome.crashed = f"{CRASH_MESSAGE} (exit code {code})"
            outcome.killed_by = -code if code is not None and code < 0 else None
        return outcome

    def _take(
        self,
        message: tuple[Any, ...],
        outcome: ChildOutcome,
        on_progress: Callable[[float, str], None],
        on_checkpoint: Callable[[str], tuple[str, str | None]] | None,
    ) -> bool:
        """Act on one message from the child; whether it was the child's last."""
        tag = message[0]
        if tag == "progress":
            on_progress(message[1], message[2])
            return False
        if tag == "checkpoint":
            reply = on_checkpoint(message[1]) if on_checkpoint else ("error", "no checkpoints")
            with contextlib.suppress(OSError):  # a child gone meanwhile ends the relay anyway
                self._reader.send(reply)
            return False
        if tag == "stopped":
            raise JobStopped
        if tag == "retry":
            outcome.retry = (str(message[1][0]), str(message[1][1]))
        elif tag == "result":
            outcome.value = message[1]
        elif tag == "failed":
            outcome.failed = message[1]
        elif tag == "not_json":
            outcome.not_json = message[1]
        else:
            outcome.crashed = message[1]
        return True

    def stop(self) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after a grace period) and reap it.
        Safe to call from any thread, any number of times."""
        with self._stop_lock:
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(_STOP_GRACE_S)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(_STOP_GRACE_S)
