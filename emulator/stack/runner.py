"""Bring the local stack up, report on it, and take it down by its recorded process ids."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from emulator import ports
from emulator.resources import LocalResources, create_resources
from emulator.stack import processes
from emulator.stack.processes import StartError
from emulator.stack.settings import PASSED_THROUGH, RESOURCE_NAME, StackSettings
from emulator.stack.state import (
    PID_KEYS,
    STARTED_AT_KEY,
    RecordedProcess,
    StackState,
    read_state,
    remove_state,
    write_state,
)

if TYPE_CHECKING:
    import boto3

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

# Real credentials or a profile in the caller's environment must never reach moto's clients.
_DROPPED_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE")

STOP_GRACE_S = 10.0
"""The runtime stops its agents on SIGTERM, giving each 5 s; leave it time to finish."""


@dataclass
class _Started:
    """Processes started so far, so that a failed start stops exactly these."""

    records: dict[str, RecordedProcess] = field(default_factory=dict)

    def add(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        self.records[name] = processes.record(name, proc)

    def stop_all(self) -> None:
        for name in PID_KEYS:
            if name in self.records:
                processes.stop_group(self.records[name].pid, STOP_GRACE_S)


def running_pids(state: StackState) -> dict[str, int]:
    """The recorded processes still alive and still ours (same command, same start)."""
    return {
        name: recorded.pid
        for name, recorded in state.processes.items()
        if processes.is_ours(recorded)
    }


def strangers(state: StackState, ours: dict[str, int]) -> dict[str, int]:
    """Recorded pids that some other process now has: never to be signalled."""
    return {
        name: pid
        for name, pid in state.pids.items()
        if name not in ours and processes.is_running(pid)
    }


def up(settings: StackSettings, out: TextIO = sys.stdout) -> int:
    """Start moto, create the resources, start the runtime and the poller's schedule, write
    the env file. Returns an exit code; prints what it started."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.state_dir / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("Another `make local-up` is starting this stack right now.", file=out)
            return 1
        return _up_locked(settings, out)


def _up_locked(settings: StackSettings, out: TextIO) -> int:
    state = read_state(settings.state_dir)
    if state is not None:
        alive = running_pids(state)
        shown = ", ".join(f"{name} {pid}" for name, pid in alive.items())
        if len(alive) == len(PID_KEYS):
            print(
                f"The local stack is already running ({shown}); its settings are in "
                f"{settings.state_dir / 'env'}. Stop it with `make local-down` first.",
                file=out,
            )
            return 0
        if alive:
            print(
                f"The local stack is partly running ({shown} of {len(PID_KEYS)} processes): "
                "run `make local-down`, then `make local-up`.",
                file=out,
            )
            return 1
        remove_state(settings.state_dir)
    began = time.monotonic()
    started = _Started()
    try:
        values = _start(settings, started)
    except (StartError, OSError) as exc:
        started.stop_all()
        print(f"local-up failed: {exc}", file=sys.stderr)
        return 1
    except BaseException:
        started.stop_all()
        raise
    _print_started(settings, values, time.monotonic() - began, out)
    return 0


def _start(settings: StackSettings, started: _Started) -> dict[str, str]:
    logs = settings.state_dir
    moto_port = _port(settings.moto_port, "LOCAL_MOTO_PORT")
    runtime_port = _port(settings.runtime_port, "LOCAL_RUNTIME_PORT")
    moto_url = f"http://127.0.0.1:{moto_port}"
    runtime_url = f"http://127.0.0.1:{runtime_port}"
    base_env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    venv_bin = str(Path(sys.executable).parent)
    base_env["PATH"] = f"{venv_bin}{os.pathsep}{base_env.get('PATH', '')}"
    base_env["PYTHONUNBUFFERED"] = "1"
    # No Bedrock model is reachable on the local stack: the `agent` kind uses the agent's
    # offline scripted model unless the caller chose otherwise.
    base_env.setdefault("JOBAGENT_SCRIPTED_MODEL", "1")

    moto_log = logs / "moto.log"
    moto = processes.spawn(
        [sys.executable, "-m", "emulator.moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
        log_path=moto_log,
        env=base_env,
    )
    started.add("moto server", moto)
    processes.wait_until(
        processes.answers_http(f"{moto_url}/moto-api/"),
        moto,
        what="the moto server",
        log_path=moto_log,
        timeout_s=30,
    )
    resources = _create_resources(settings, moto_url)

    values = {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": runtime_url,
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_REGION": settings.region,
        **LOCAL_CREDENTIALS,
        **resources.env(),
        "AGENT_RUNTIME_ARN": settings.runtime_arn,
        "LOCAL_RUNTIME_URL": runtime_url,
        "LOCAL_FASTPATH": settings.fastpath,
        "POLLER_INTERVAL_S": f"{settings.poller_interval_s:g}",
    }
    if settings.fastpath == "1":
        # The runtime passes its environment to every agent it starts: agents signal here.
        values["COMPLETION_QUEUE_URL"] = resources.completion_queue_url
    child_env = {**base_env, **values}

    runtime_log = logs / "agentcore.log"
    runtime = processes.spawn(
        [
            sys.executable,
            "-m",
            "emulator.agentcore",
            "--port",
            str(runtime_port),
            "--agent-log-dir",
            str(logs / "agents"),
        ],
        log_path=runtime_log,
        env=child_env,
    )
    started.add("AgentCore runtime", runtime)
    processes.wait_until(
        processes.answers_http(f"{runtime_url}/sessions"),
        runtime,
        what="the local AgentCore runtime",
        log_path=runtime_log,
        timeout_s=30,
    )

    schedule_log = logs / "poller.log"
    ready_file = logs / "poller.ready"
    ready_file.unlink(missing_ok=True)
    schedule = processes.spawn(
        [
            sys.executable,
            "-m",
            "emulator.stack.schedule",
            "--interval-s",
            f"{settings.poller_interval_s:g}",
            "--timeout-s",
            f"{settings.poller_timeout_s:g}",
            "--region",
            settings.region,
            "--ready-file",
            str(ready_file),
            *(
                ["--completion-queue-url", resources.completion_queue_url]
                if settings.fastpath == "1"
                else []
            ),
        ],
        log_path=schedule_log,
        # An explicit POLLER_SESSION_MAX_LIFETIME_S (a test's) wins over the runtime's.
        env={**settings.poller_env(), **child_env},
    )
    started.add("poller schedule", schedule)
    processes.wait_until(
        ready_file.exists,
        schedule,
        what="the poller's schedule",
        log_path=schedule_log,
        timeout_s=30,
    )

    for recorded in started.records.values():
        values.update(recorded.fingerprint())
    values[STARTED_AT_KEY] = f"{time.time():.3f}"
    write_state(settings.state_dir, values)
    return values


def _port(configured: int, name: str) -> int:
    if configured == 0:
        return ports.free_port()
    if ports.port_in_use(configured):
        raise StartError(
            f"port {configured} ({name}) is in use, perhaps by another checkout's stack: "
            f"unset {name} to pick a free port"
        )
    return configured


def _create_resources(settings: StackSettings, moto_url: str) -> LocalResources:
    # Imported here: boto3 costs a quarter of a CPU-second, and only `up` needs it.
    import boto3  # noqa: PLC0415

    session = boto3.session.Session(
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=settings.region,
    )
    return create_resources(_EndpointSession(session, moto_url), RESOURCE_NAME)


class _EndpointSession:
    """A boto3 session whose clients all talk to one endpoint (moto)."""

    def __init__(self, session: boto3.session.Session, endpoint_url: str) -> None:
        self._session = session
        self._endpoint_url = endpoint_url
        self.region_name = session.region_name

    def client(self, service: str) -> object:
        return self._session.client(service, endpoint_url=self._endpoint_url)


def _print_started(
    settings: StackSettings, values: dict[str, str], took_s: float, out: TextIO
) -> None:
    logs = settings.state_dir
    runtime_settings = ", ".join(
        f"{name}={os.environ[name]}" for name in PASSED_THROUGH if os.environ.get(name)
    )
    lines = [
        f"Local stack up in {took_s:.1f} s:",
        f"  moto server        {values['AWS_ENDPOINT_URL']:<24} pid {values['MOTO_PID']:<7} "
        f"log {logs / 'moto.log'}",
        f"  AgentCore runtime  {values['LOCAL_RUNTIME_URL']:<24} pid "
        f"{values['LOCAL_RUNTIME_PID']:<7} log {logs / 'agentcore.log'}",
        f"  poller schedule    {'every ' + values['POLLER_INTERVAL_S'] + ' s':<24} pid "
        f"{values['POLLER_SCHEDULE_PID']:<7} log {logs / 'poller.log'}",
        f"  runtime settings   {runtime_settings or 'defaults (AGENTCORE_* unset)'}",
        f"  tables {values['JOBS_TABLE']} and {values['EVENTS_TABLE']}, "
        f"bucket {values['RESULTS_BUCKET']}, "
        f"topic {values['TOPIC_ARN'].rsplit(':', 1)[-1]}, inbox {values['INBOX_QUEUE_URL']}",
        f"Settings written to {logs / 'env'}; the agentjobs CLI reads it from the repository "
        "root. Stop with `make local-down`.",
    ]
    print("\n".join(lines), file=out)


def down(settings: StackSettings, out: TextIO = sys.stdout) -> int:
    """Stop every recorded process (process groups, then stragglers) and forget the stack."""
    state = read_state(settings.state_dir)
    if state is None:
        print(
            f"No local stack is recorded in {settings.state_dir / 'env'}; nothing to stop.",
            file=out,
        )
        return 0
    alive = running_pids(state)
    for name, pid in strangers(state, alive).items():
        print(
            f"Left pid {pid} alone: it is not the {name} this stack started "
            "(its command line or start time differ, or the record does not say).",
            file=out,
        )
    for name in PID_KEYS:
        if name in alive:
            processes.stop_group(alive[name], STOP_GRACE_S)
            print(f"Stopped the {name} (pid {alive[name]}).", file=out)
    if not alive:
        print("The recorded local stack was no longer running.", file=out)
    remove_state(settings.state_dir)
    (settings.state_dir / "poller.ready").unlink(missing_ok=True)
    print(f"Local stack down; logs kept in {settings.state_dir}.", file=out)
    return 0


def status(settings: StackSettings, out: TextIO = sys.stdout) -> int:
    """Say whether the recorded stack runs: 0 when all of it does, 1 otherwise."""
    state = read_state(settings.state_dir)
    if state is None:
        print("The local stack is not running (start it with `make local-up`).", file=out)
        return 1
    alive = running_pids(state)
    for name, pid in state.pids.items():
        print(f"  {name:<18} pid {pid:<7} {'running' if name in alive else 'STOPPED'}", file=out)
    print(
        f"  moto {state.values.get('AWS_ENDPOINT_URL')}, "
        f"runtime {state.values.get('LOCAL_RUNTIME_URL')}",
        file=out,
    )
    if len(alive) == len(PID_KEYS):
        print("The local stack is running.", file=out)
        return 0
    print(
        "The local stack is partly stopped: run `make local-down`, then `make local-up`.", file=out
    )
    return 1
