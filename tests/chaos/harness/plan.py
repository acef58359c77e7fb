"""What a chaos run is asked to do and what it counts: the plan, hostile requests, the figures."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentjobs.protocol import TERMINAL_STATUSES, encode_json
from builtin_jobs.synthetic import SyntheticInput, sized_result
from testbed.processes import REPO, VENV_BIN

CHAOS_AGENT_CMD = f"{VENV_BIN / 'python'} {REPO / 'tests' / 'chaos' / 'chaos_agent.py'}"
TERMINAL = frozenset(str(s) for s in TERMINAL_STATUSES)

# Every fault kind, each switchable (ChaosConfig.faults) and counted (Figures.faults).
FAULT_KINDS = (
    "agent_sigkill",  # SIGKILL a session's agent process while its job runs
    "session_stop",  # StopRuntimeSession on a session whose job runs
    "idle_timeout",  # a short idle timeout: sessions idle out before their job is collected
    "max_lifetime",  # a short max lifetime: sessions end under running jobs
    "poller_crash",  # a poller dies between two of its steps (nothing after reaches AWS)
    "poller_raise",  # a poller raises between two steps of one job (the tick goes on)
    "concurrent_pollers",  # several pollers tick the same table at once
    "sns_fail",  # SNS Publish throttled, 5xx, unreachable, or its answer lost
    "dynamodb_fail",  # DynamoDB calls throttled, 5xx, unreachable, or their answer lost
    "s3_fail",  # S3 calls throttled, 5xx, unreachable, or their answer lost
    "garbage_agent",  # an agent answering some polls with garbage
    "busy_reject",  # a runtime that refuses calls to HealthyBusy sessions
)
STOP_REASONS = {
    "idle timeout": "idle_timeout",
    "max lifetime reached": "max_lifetime",
    "agent process exited": "session ended: agent process exited",
    "health check failed": "session ended: health check failed",
}


# Hostile submits, each once per run: oversized fields and text that does not encode as
# UTF-8. Each must be refused with a clear error (never INTERNAL_ERROR, never a 5xx), or run
# to an end that is recorded and notified like any other job. `{bucket}` is the world's
# results bucket. Lone surrogates travel as JSON escapes, as json.dumps writes them.
HOSTILE: dict[str, dict[str, Any]] = {
    "error-200k": {"kind": "synthetic", "input": {"seconds": 0.2, "fail": "e" * 200_000}},
    "csv-uri-200k": {"kind": "data_report", "input": {"csv_uri": "s3://{bucket}/inputs/x200k"}},
    "csv-uri-300k": {"kind": "data_report", "input": {"csv_uri": "s3://{bucket}/inputs/x300k"}},
    "fail-surrogate": {"kind": "synthetic", "input": {"seconds": 0.2, "fail": "bad \ud800 text"}},
    "token-surrogate": {"kind": "synthetic", "input": {"seconds": 0.2}, "client_token": "\ud800"},
    "token-too-long": {"kind": "synthetic", "input": {"seconds": 0.2}, "client_token": "t" * 300},
    "prompt-surrogate": {"prompt": "summarise \udfff this"},
    "status-surrogate": {"action": "status", "job_id": "\ud800"},
}
HOSTILE_KEY_BYTES = {"x200k": 200_000, "x300k": 300_000}


def hostile_payload(variant: str, bucket: str) -> dict[str, Any]:
    """The request a hostile variant sends (a submit unless it names another action)."""
    template: dict[str, Any] = json.loads(json.dumps(HOSTILE[variant]))
    plain = "action" in template or "prompt" in template
    payload: dict[str, Any] = template if plain else {"action": "submit", **template}
    job_input = payload.get("input")
    if isinstance(job_input, dict) and isinstance(job_input.get("csv_uri"), str):
        uri = job_input["csv_uri"].replace("{bucket}", bucket)
        for name, size in HOSTILE_KEY_BYTES.items():
            uri = uri.replace(name, "k" * size)
        job_input["csv_uri"] = uri
    return payload


def machine_cores() -> int:
    """The cores this process may run on (the affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ChaosConfig:
    """What one chaos run does. Rates are per opportunity (call, tick or injector turn)."""

    jobs: int = 40
    seed: int = 7
    faults: frozenset[str] = frozenset(FAULT_KINDS)
    pollers: int = 3
    session_workers: int = 4
    idle_timeout_s: float = 4.0
    max_lifetime_s: float = 12.0
    lease_s: float = 8.0
    handoff_margin_s: float = 5.0
    read_timeout_s: float = 4.0
    crash_rate: float = 0.25
    aws_fault_rate: float = 0.06
    lost_answer_rate: float = 0.02
    garbage_rate: float = 0.35
    garbage_sessions: float = 0.25
    injector_pause_s: tuple[float, float] = (0.8, 2.5)
    tick_pause_s: tuple[float, float] = (0.2, 0.7)
    job_seconds: tuple[float, float] = (0.1, 2.5)  # an ordinary synthetic job's length
    resumable_seconds: tuple[float, float] = (1.5, 4.0)  # a resumable one's
    quiesce_tick_bound: int = 60
    quiesce_timeout_s: float = 240.0
    log_dir: Path = Path(tempfile.gettempdir()) / "agentjobs-chaos"
    hostile: bool = True
    hostile_per_session: int = 1  # hostile requests sent one after another into one session
    # Live sessions (each one or two agent processes) across every world at once: session
    # workers wait for room. Unbounded, a 300-job run drove a 2-core machine to load 21.
    max_sessions: int = field(default_factory=lambda: 2 * machine_cores())
    min_accepted: float = 0.9

    def on(self, kind: str) -> bool:
        """Whether a fault kind is switched on."""
        return kind in self.faults


@dataclass
class JobPlan:
    """A job the harness submitted, and what it must end as."""

    job_id: str
    session_id: str
    job_input: dict[str, Any]
    cancelled: bool = False
    hostile: str | None = None
    outliving: bool = False  # outlives its session's max lifetime; the injector spares it
    target: bool = False  # resumable, and the injector's first hit in its world
    max_attempts: int = 1  # more than 1: a resumable job (see durable.py)

    def expected_result(self) -> bytes | None:
        """The synthetic job's deterministic result bytes (None for a failing job, or one
        whose result is not known in advance)."""
        if self.hostile is not None or self.job_input.get("fail") is not None:
            return None
        if self.max_attempts > 1 or self.outliving:
            # Its result says which attempt ended it and where that attempt resumed from (a
            # handoff resumes too): durable.check_resumed_result.
            return None
        params = SyntheticInput(
            seconds=float(self.job_input["seconds"]),
            cpu=bool(self.job_input.get("cpu", False)),
            result_bytes=int(self.job_input["result_bytes"]),
        )
        return encode_json(sized_result(params)).encode()


@dataclass
class Figures:
    """What the run did, counted across worlds and threads."""

    faults: Counter[str] = field(default_factory=Counter)
    jobs_by_status: Counter[str] = field(default_factory=Counter)
    durable: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    invariants: dict[str, tuple[bool, str]] = field(default_factory=dict)
    violations: list[tuple[str, str]] = field(default_factory=list)
    duplicates: int = 0
    jobs_submitted: int = 0
    jobs_in_table: int = 0
    quiesce_s: float = 0.0
    quiesce_ticks: int = 0
    wall_s: float = 0.0
    hostile_refused: int = 0
    peak_sessions: int = 0
    gate_wait_s: float = 0.0
    peak_load: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, kind: str, amount: int = 1) -> None:
        """Count one injected fault."""
        with self.lock:
            self.faults[kind] += amount

    def event(self, name: str) -> None:
        """Count something that happened (not a fault)."""
        with self.lock:
            self.events[name] += 1

    def violation(self, invariant: str, text: str) -> None:
        """Record a broken invariant (one of INVARIANTS)."""
        with self.lock:
            self.violations.append((invariant, text))


SHORT_FORM = ChaosConfig(
    jobs=20,
    session_workers=3,
    max_sessions=6,
    pollers=2,
    # Max lifetime counts from a session's creation, and a session took 5 s to start on a
    # loaded machine: with a 4 s idle timeout the world's idle session reached its 8 s
    # lifetime first and the idle timeout never fired. 2.5 s idles it out first.
    idle_timeout_s=2.5,
    max_lifetime_s=8.0,
    lease_s=6.0,
    read_timeout_s=3.0,
    # The handoff's window: a quiet short run whose pollers met AWS faults and each other's
    # leases in a 3 s window made no handoff at all.
    handoff_margin_s=4.5,
    crash_rate=0.2,  # the armed passes that reach their step are few in a short run
    aws_fault_rate=0.04,
    injector_pause_s=(1.2, 3.0),
    garbage_sessions=0.0,
    hostile_per_session=4,
    tick_pause_s=(0.2, 0.5),
    job_seconds=(0.1, 1.5),
    resumable_seconds=(1.0, 2.5),
)
"""The chaos suite's short form (`make test`): 20 jobs (8 of them the hostile requests, each
world's sharing one session while refused) where the full form has 300, every fault kind on,
both busy policies, on shorter clocks (jobs, max lifetime, lease) and with fewer hits, armed
passes and AWS faults; garbage only in the one session each world guarantees. Every kind
still fires, and a resume after a loss and a handoff happen, by what each world guarantees
whatever its draws (see World), not by the seed's luck."""
