"""The local runtime's preloaded parent of agent processes: it imports the agent SDK once, then
forks one child per session, which becomes `python <agent script>` in every way that counts.

A cold agent start spends most of its CPU importing the bedrock-agentcore SDK (boto3,
OpenTelemetry, starlette): about 0.45 CPU-s, every session. Forked from here, a session
starts with those modules already in memory, shared copy-on-write, and with botocore's
data files for the job API's clients already parsed (`emulator.botocore_files`). Only
third-party modules are preloaded, so an agent's own code is read afresh by every session,
as in AgentCore, where each session is a new microVM.

Run by `warm_start.WarmStarter` as `python zygote.py REQUEST_FD REPLY_FD`, with the same
environment an agent gets minus its session's variables. Requests are JSON lines: the
agent's argv, working directory, environment and log file. Replies are JSON lines too:
`{"ready": ...}` once, then `{"pid": N}` for each request and `{"exit": N, "code": C}` when
a child ends (C as `subprocess` reports it: negative for a signal). It ends when its
request pipe closes, which is when the local runtime ends, however it ends.

Only the standard library is imported before the preload: this process's modules become
every agent's modules.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import selectors
import signal
import sys
import threading
from typing import Any

# What every agent of this project imports first, and what an SDK agent's `app.run()`
# imports when it starts serving. A module the interpreter does not have is skipped.
PRELOAD = (
    "bedrock_agentcore",
    "uvicorn",
    "uvicorn.config",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.websockets.auto",
    "pydantic",
)
# The services a job API agent makes clients of (agentjobs.agent.adapters). Their botocore
# data files (models, endpoint rules, partitions), parsed here once, are every session's:
# parsing them was half of a warm session's CPU. The files only: each session still makes
# its own botocore session and clients, with its own credentials and configuration.
BOTOCORE_SERVICES = ("dynamodb", "s3", "sqs")


def main(request_fd: int, reply_fd: int) -> dict[str, Any] | None:
    """Serve fork requests until the request pipe closes (None), or return a forked child's
    request, in that child."""
    # Python put this file's folder first on sys.path; no agent has it there.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    loaded = [name for name in PRELOAD if _try_import(name)]
    if _parse_botocore_data(BOTOCORE_SERVICES):
        loaded.append("botocore data")
    # A thread here would be copied into every child without its locks' owners.
    threads = threading.active_count()
    if threads != 1:
        _send(reply_fd, {"ready": False, "why": f"{threads} threads after the preload"})
        return None
    _send(reply_fd, {"ready": True, "preloaded": loaded})
    # SIGINT is the local runtime's to handle (a Ctrl-C reaches the whole process group):
    # this process ends when the runtime closes the request pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    selector = selectors.DefaultSelector()
    selector.register(request_fd, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    pending = b""
    while True:
        for key, _ in selector.select():
            if key.fd == wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                _report_exits(reply_fd)
                continue
            chunk = os.read(request_fd, 65536)
            if not chunk:
                return None
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request: dict[str, Any] = json.loads(line)
                sys.stdout.flush()
                sys.stderr.flush()
                try:
                    pid = os.fork()
                except OSError as exc:
                    _send(reply_fd, {"pid": None, "why": f"fork failed: {exc.strerror}"})
                    continue
                if pid == 0:
                    # Signals first: the wakeup fd is about to close, and its number be reused.
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    signal.signal(signal.SIGINT, signal.default_int_handler)
                    selector.close()
                    for fd in (request_fd, reply_fd, wake_r, wake_w):
                        os.close(fd)
                    return request
                _send(reply_fd, {"pid": pid})


def _try_import(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _parse_botocore_data(services: tuple[str, ...]) -> bool:
    """Parse what a client of each service reads, kept for every later botocore session."""
    try:
        import botocore.session  # noqa: PLC0415 - the preload's, when the agent has boto3
        from botocore import UNSIGNED  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415

        from emulator.botocore_files import share_parsed_data_files  # noqa: PLC0415
    except ImportError:
        return False
    share_parsed_data_files()
    session = botocore.session.Session()
    for service in services:
        # Unsigned, in a named region: no credentials are looked up, nothing is called.
        session.create_client(
            service, region_name="us-east-1", config=Config(signature_version=UNSIGNED)
        )
    return True


def _send(fd: int, message: dict[str, Any]) -> None:
    os.write(fd, json.dumps(message).encode() + b"\n")


def _report_exits(reply_fd: int) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(reply_fd, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def become_agent(request: dict[str, Any]) -> None:
    """In a forked child: take the session's process group, files, directory, environment
    and argv, then run the agent script as `__main__`. Its end is this process's end: an
    uncaught exception or SystemExit leaves the interpreter as it would leave `python`."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    log_path = request.get("log_path")
    if log_path is not None:
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
    os.chdir(request["cwd"])
    # multiprocessing noted the zygote's directory when the preload imported it; a job's
    # spawned child resolves relative paths against the agent's, as after `python script`.
    mp_process = sys.modules.get("multiprocessing.process")
    if mp_process is not None:
        mp_process.ORIGINAL_DIR = os.getcwd()  # type: ignore[attr-defined]
    os.environ.clear()
    os.environ.update(request["env"])
    script = os.path.abspath(request["argv"][0])
    if not os.path.isfile(script):
        # What `python` itself says and does when it cannot open its script.
        message = f"can't open file {script!r}: [Errno 2] No such file or directory"
        print(f"{sys.executable}: {message}", file=sys.stderr)
        raise SystemExit(2)
    sys.argv = [script, *request["argv"][1:]]
    sys.path.insert(0, os.path.dirname(os.path.realpath(script)))
    # The shim, loaded here as this process's sitecustomize, acts on the session's variables.
    shim = sys.modules.get("sitecustomize")
    follow_session = getattr(shim, "follow_session", None)
    if follow_session is not None:
        follow_session(os.environ)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    forked = main(int(sys.argv[1]), int(sys.argv[2]))
    if forked is not None:
        become_agent(forked)
