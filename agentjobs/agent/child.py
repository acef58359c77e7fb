"""Running one job in a child process: the child's entry point and the parent's handle on it."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from agentjobs.agent.context import JobFailed, JobStopped
from agentjobs.agent.declarations import NOT_JSON_MESSAGE, call_job, plain_result

log = logging.getLogger(__name__)

# Spawn, never fork: the server is threaded, and a forked child inherits locks held by
# other threads at the moment of the fork.
_SPAWN = multiprocessing.get_context("spawn")
_PARENT_CHECK_S = 0.5
_STOP_GRACE_S = 2.0
JOB_NICENESS = 10

CRASH_MESSAGE = "the job's process failed unexpectedly"


class _PipeContext:
    """The JobContext of a job in a child process: progress goes up the pipe. Stops arrive
    as SIGTERM from the parent, so there is nothing to check here."""

    def __init__(self, conn: Connection, job_id: str, session_id: str) -> None:
        self._conn = conn
        self._job_id = job_id
        self._session_id = session_id

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


def child_main(conn: Connection, work: ChildWork, parent_pid: int) -> None:
    """Run one job and send its progress and its end up `conn`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    # Jobs yield the CPU to the server: a slow /ping gets a session marked unhealthy.
    with contextlib.suppress(OSError):
        os.nice(JOB_NICENESS)
    context = _PipeContext(conn, work.job_id, work.session_id)
    try:
        conn.send(_run(work, context))
    finally:
        conn.close()


def _run(work: ChildWork, context: _PipeContext) -> tuple[str, Any]:
    try:
        returned = call_job(work.func, work.takes_context, work.params, context)
    except JobFailed as exc:
        return ("failed", str(exc.message))
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


class ChildJob:
    """A job's child process, seen from the parent."""

    def __init__(self, name: str, work: ChildWork) -> None:
        reader, writer = _SPAWN.Pipe(duplex=False)
        self._reader = reader
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
    ) -> ChildOutcome:
        """Relay progress until the child ends; raise JobStopped (after stopping the child)
        as soon as `should_stop` says so."""
        try:
            return self._relay(on_progress, should_stop, poll_s)
        finally:
            self.stop()
            self._reader.close()

    def _relay(
        self,
        on_progress: Callable[[float, str], None],
        should_stop: Callable[[], bool],
        poll_s: float,
    ) -> ChildOutcome:
        outcome = ChildOutcome()
        ended = False
        while not ended:
            if should_stop():
                raise JobStopped
            ready = multiprocessing.connection.wait([self._reader], timeout=poll_s)
            if not ready:
                continue
            try:
                message = self._reader.recv()
            except (EOFError, OSError):
                break
            tag = message[0]
            if tag == "progress":
                on_progress(message[1], message[2])
            elif tag == "result":
                outcome.value, ended = message[1], True
            elif tag == "failed":
                outcome.failed, ended = message[1], True
            elif tag == "not_json":
                outcome.not_json, ended = message[1], True
            else:
                outcome.crashed, ended = message[1], True
        self._process.join(_STOP_GRACE_S)
        if not ended and should_stop():
            raise JobStopped  # it died because it was told to
        if not ended:
            outcome.crashed = f"{CRASH_MESSAGE} (exit code {self._process.exitcode})"
        return outcome

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
