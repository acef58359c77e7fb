"""The chaos harness: many jobs through moto, the local runtime (real agent processes) and
several pollers at once, faults injected at random, then the invariants checked against the
table, the bucket and the inbox."""

from __future__ import annotations

import importlib
import itertools
import json
import logging
import os
import random
import re
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from botocore.exceptions import ReadTimeoutError as BotoReadTimeoutError
from builtin_jobs.synthetic import SyntheticInput, sized_result
from jobpoller.agentcore import StopSessionError
from jobpoller.events import process_event
from jobpoller.services import build_services
from jobpoller.settings import PollerSettings

from agentjobs import schema
from agentjobs.notifier import NotifyError
from agentjobs.protocol import TERMINAL_STATUSES, ErrorCode, encode_json
from agentjobs.store import StoreError
from emulator.resources import LocalResources
from tests.support.aws import REGION, MotoEndpoint
from tests.support.inbox import drain_inbox
from tests.support.local_runtime import RUNTIME_ARN, agent_processes_of, local_runtime
from tests.support.poller import LocalContext
from tests.support.processes import REPO, VENV_BIN

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

# The poller's steps for one job, as the AWS call that begins each (service.operation and
# a marker in the DynamoDB update expression).
STEPS: dict[str, tuple[str, str | None]] = {
    "lease": ("dynamodb.UpdateItem", "SET #lh = :me"),
    "poll": ("bedrock-agentcore.InvokeAgentRuntime", None),
    "progress": ("dynamodb.UpdateItem", "SET progress = :p, last_seen_at"),
    "finish": ("dynamodb.UpdateItem", "finished_at = :finished"),
    "publish": ("sns.Publish", None),
    "record-notified": ("dynamodb.UpdateItem", "notified_at = if_not_exists"),
    "stop-session": ("bedrock-agentcore.StopRuntimeSession", None),
    "close": ("dynamodb.UpdateItem", "session_stopped_at"),
}
AWS_SERVICES = {"dynamodb": "dynamodb_fail", "s3": "s3_fail", "sns": "sns_fail"}
FAILURE_MODES = ("throttle", "5xx", "unreachable")
# Calls whose answer may be lost after AWS applied them (the nastiest partial failure).
LOSABLE = {"dynamodb.UpdateItem", "sns.Publish", "s3.PutObject", "s3.GetObject"}
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


class Killed(BaseException):
    """The poller's process died at this call: nothing after it reaches AWS."""


class InjectedError(Exception):
    """A poller bug injected between two steps of one job."""


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
    read_timeout_s: float = 4.0
    crash_rate: float = 0.25
    aws_fault_rate: float = 0.06
    lost_answer_rate: float = 0.02
    garbage_rate: float = 0.35
    garbage_sessions: float = 0.25
    injector_pause_s: tuple[float, float] = (0.8, 2.5)
    tick_pause_s: tuple[float, float] = (0.2, 0.7)
    quiesce_tick_bound: int = 60
    quiesce_timeout_s: float = 240.0
    log_dir: Path = Path(tempfile.gettempdir()) / "agentjobs-chaos"
    hostile: bool = True
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

    def expected_result(self) -> bytes | None:
        """The synthetic job's deterministic result bytes (None for a failing job, or one
        whose result is not known in advance)."""
        if self.hostile is not None or self.job_input.get("fail") is not None:
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


class _Raw:
    """The body of a made-up HTTP answer, as botocore reads it."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def error_answer(service: str, mode: str, url: str) -> AWSResponse:
    """An HTTP error answer as the real service sends it (botocore parses and retries it)."""
    if service == "dynamodb":
        code = (
            "ProvisionedThroughputExceededException"
            if mode == "throttle"
            else "InternalServerError"
        )
        status = 400 if mode == "throttle" else 500
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "chaos"}
        ).encode()
        return AWSResponse(url, status, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body))
    if service == "s3":
        code, status = ("SlowDown", 503) if mode == "throttle" else ("InternalError", 500)
        xml = f"<Error><Code>{code}</Code><Message>chaos</Message></Error>"
        return AWSResponse(url, status, {"Content-Type": "application/xml"}, _Raw(xml.encode()))
    code, status = ("Throttling", 400) if mode == "throttle" else ("InternalError", 500)
    xml = (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>chaos</Message></Error>"
        "<RequestId>chaos</RequestId></ErrorResponse>"
    )
    return AWSResponse(url, status, {"Content-Type": "text/xml"}, _Raw(xml.encode()))


def step_of(operation: str, params: dict[str, Any]) -> str | None:
    """Which of the poller's steps an AWS call begins (None: another call)."""
    for step, (op, marker) in STEPS.items():
        if op == operation and (marker is None or marker in str(params.get("UpdateExpression"))):
            return step
    return None


def job_of(params: dict[str, Any]) -> str | None:
    """The job an AWS call concerns, when it names one."""
    key = params.get("Key")
    if isinstance(key, dict) and isinstance(key.get("job_id"), dict):
        return str(key["job_id"].get("S"))
    if isinstance(key, str) and key.startswith("jobs/"):  # S3: jobs/<job_id>/...
        return key.split("/")[1]
    attribute = params.get("MessageAttributes", {}).get("job_id", {}).get("StringValue")
    if attribute:
        return str(attribute)
    payload = params.get("payload")
    if isinstance(payload, bytes | str):
        with suppress(ValueError):
            decoded = json.loads(payload)
            if isinstance(decoded, dict) and isinstance(decoded.get("job_id"), str):
                return str(decoded["job_id"])
    return None


class PollerFaults:
    """botocore event hooks on one poller's clients: crashes between steps, AWS failures,
    lost answers; and the record of which publish and notified_at writes reached AWS."""

    def __init__(self, world: World, index: int) -> None:
        self.world = world
        self.config = world.config
        self.rng = random.Random(f"{self.config.seed}/{world.name}/poller{index}")
        self.dead = False
        self.armed: tuple[str, str] | None = None  # (step, "crash" | "raise")
        self.pass_id = ""
        self._local = threading.local()
        self._lock = threading.Lock()

    def new_pass(self, pass_id: str) -> None:
        """A fresh Lambda invocation: alive again, perhaps armed to die at some step."""
        self.dead = False
        self.pass_id = pass_id
        self.armed = None
        if not self.world.injecting.is_set():
            return
        modes = [m for m in ("crash", "raise") if self.config.on(f"poller_{m}")]
        if modes and self.rng.random() < self.config.crash_rate:
            self.armed = (self.rng.choice(sorted(STEPS)), self.rng.choice(modes))

    def register(self, client: Any) -> None:
        """Hook every call of `client`."""
        client.meta.events.register("before-parameter-build", self.before_call)
        client.meta.events.register("before-send", self.before_send)
        client.meta.events.register("after-call", self.after_call)

    def before_call(
        self, event_name: str, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        """Before the call's parameters are serialized (so they are the API's parameters)."""
        operation = event_name.split(".", 1)[1]
        step, job_id = step_of(operation, params), job_of(params)
        seq = self.world.seq()
        context["chaos"] = (operation, step, job_id, self.pass_id)
        self._local.burst = None
        if self.dead:
            raise Killed(operation)
        if step == "publish" and job_id:
            self.world.log_event(job_id, seq, "publish-start", self.pass_id)
        with self._lock:
            armed, hit = self.armed, self.armed is not None and self.armed[0] == step
            if hit:
                self.armed = None
        if hit and armed is not None:
            self.world.figures.fault(f"poller_{armed[1]}:before-{step}")
            if armed[1] == "crash":
                self.dead = True
                raise Killed(step)
            raise InjectedError(f"injected bug before {step}")
        service = operation.split(".", 1)[0]
        kind = AWS_SERVICES.get(service)
        if (
            kind is not None
            and self.config.on(kind)
            and self.world.injecting.is_set()
            and self.rng.random() < self.config.aws_fault_rate
        ):
            # 1 or 2 failed attempts are absorbed by the standard retries; 3 reach the poller.
            self._local.burst = [self.rng.choice((1, 2, 3, 3)), self.rng.choice(FAILURE_MODES)]

    def before_send(self, event_name: str, request: Any, **_: Any) -> AWSResponse | None:
        burst = getattr(self._local, "burst", None)
        if not burst or burst[0] <= 0:
            return None
        burst[0] -= 1
        service = event_name.split(".")[1]
        mode = burst[1]
        self.world.figures.fault(f"{AWS_SERVICES[service]}:{mode}")
        if mode == "unreachable":
            raise EndpointConnectionError(endpoint_url=str(request.url))
        return error_answer(service, mode, str(request.url))

    def after_call(
        self, event_name: str, http_response: Any, context: dict[str, Any], **_: Any
    ) -> None:
        operation, step, job_id, pass_id = context.get("chaos", (None, None, None, ""))
        status = getattr(http_response, "status_code", 0)
        if operation == "bedrock-agentcore.InvokeAgentRuntime" and status == 409:
            self.world.figures.fault("busy_reject:poll refused")
        if status >= 300 or operation is None:
            return
        seq = self.world.seq()
        if job_id and step in ("publish", "record-notified", "finish"):
            self.world.log_event(job_id, seq, f"{step}-ok", pass_id)
        kind = AWS_SERVICES.get(operation.split(".", 1)[0])
        if (
            kind is not None
            and operation in LOSABLE
            and self.config.on(kind)
            and self.world.injecting.is_set()
            and self.rng.random() < self.config.lost_answer_rate
        ):
            self.world.figures.fault(f"{kind}:answer lost")
            raise BotoReadTimeoutError(endpoint_url="chaos://answer-lost")


class _HookedSession:
    """A boto3 session stand-in for the poller's own `build_services`: its clients go to moto
    (or the local runtime) and carry this poller's fault hooks."""

    def __init__(self, world: World, faults: PollerFaults) -> None:
        self._world = world
        self._faults = faults
        self.region_name = REGION

    def client(self, service: str, config: Config | None = None) -> Any:
        endpoint = (
            self._world.runtime_url if service == "bedrock-agentcore" else self._world.moto.url
        )
        client = self._world.moto.session().client(service, endpoint_url=endpoint, config=config)
        self._faults.register(client)
        return client


class SessionGate:
    """Room for a new session only while fewer than `limit` sessions are live across every
    world: those the runtimes list as not stopped, and those being filled right now."""

    def __init__(self, limit: int, worlds: list[World]) -> None:
        self.limit = max(limit, 1)
        self.worlds = worlds
        self.peak = 0
        self._filling: set[str] = set()
        self._lock = threading.Lock()

    def _live(self) -> set[str]:
        live = set(self._filling)
        for world in self.worlds:
            live |= {
                f"{world.name}/{s}" for s, state in _sessions(world).items() if state != "Stopped"
            }
        return live

    def enter(self, world: World, session_id: str) -> bool:
        """Wait for room and take it for this session; False when the world is stopping."""
        key = f"{world.name}/{session_id}"
        while not world.stopping.is_set():
            with self._lock:
                try:
                    live = len(self._live())
                except OSError:  # a runtime too busy to list its sessions: no room yet
                    live = self.limit
                if live < self.limit:
                    self._filling.add(key)
                    self.peak = max(self.peak, live + 1)
                    return True
            world.stopping.wait(0.3)
        return False

    def leave(self, world: World, session_id: str) -> None:
        """The session is filled: from now on the runtime's listing counts it."""
        with self._lock:
            self._filling.discard(f"{world.name}/{session_id}")


class World:
    """One local runtime (one busy policy) with its own table, bucket, topic and inbox, and the
    threads that drive it: session workers (submit), pollers, an injector and a watcher."""

    def __init__(
        self,
        name: str,
        busy_policy: str,
        jobs: int,
        config: ChaosConfig,
        moto: MotoEndpoint,
        hostile: list[str] | None = None,
    ) -> None:
        self.name = name
        self.busy_policy = busy_policy
        self.config = config
        self.moto = moto
        self.figures = Figures()
        self.rng = random.Random(f"{config.seed}/{name}")
        self.log_dir = config.log_dir / name
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.garbage_flag = self.log_dir / "garbage.on"
        self.garbage_log = self.log_dir / "garbage.log"
        self.injecting = threading.Event()
        self.stopping = threading.Event()
        self.plans: dict[str, JobPlan] = {}
        self.history: dict[str, list[str]] = defaultdict(list)
        self.events: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        self.ticks: Counter[int] = Counter()
        self._jobs = jobs
        self._jobs_taken = 0
        variants = (hostile if hostile is not None else sorted(HOSTILE)) if config.hostile else []
        # Hostile submits spread evenly over the world's jobs, so a short run meets them all.
        self._hostile_at = {
            (i + 1) * jobs // (len(variants) + 1): v for i, v in enumerate(variants) if jobs
        }
        self.gate: SessionGate | None = None
        # Jobs that outlive their session's max lifetime: without them a short run may see
        # no session reach it (sessions end sooner when their jobs are short).
        self._outliving_left = 2 if config.on("max_lifetime") else 0
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self.resources: LocalResources | None = None
        self.runtime_url = ""
        self.runtime_pid = 0
        self.settings: PollerSettings | None = None

    # Shared bookkeeping

    def seq(self) -> int:
        """A global order of observed calls."""
        return next(self._seq)

    def log_event(self, job_id: str, seq: int, what: str, pass_id: str) -> None:
        """Remember that a pass began or completed a publish, finish or notified_at write."""
        with self._lock:
            self.events[job_id].append((seq, what, pass_id))

    def take_job(self, ordinary_only: bool = False) -> tuple[bool, str | None]:
        """Claim one of the jobs left to submit: whether there was one, and the hostile
        variant it is to be, if any (with `ordinary_only`, a hostile one is left for the
        next session: each hostile request gets a session of its own)."""
        with self._lock:
            index = self._jobs_taken
            if index >= self._jobs or (ordinary_only and index in self._hostile_at):
                return False, None
            self._jobs_taken += 1
            return True, self._hostile_at.get(index)

    # Clients without hooks, for the harness itself

    def aws(self, service: str) -> Any:
        return self.moto.client(service)

    def agentcore(self) -> Any:
        return self.moto.session().client(
            "bedrock-agentcore",
            endpoint_url=self.runtime_url,
            config=Config(retries={"total_max_attempts": 1}, read_timeout=60),
        )

    # Running

    @contextmanager
    def running(self) -> Iterator[World]:
        """The runtime up, resources created, poller settings made; stopped at the end, and
        no agent process may outlive it."""
        self.resources = self.moto.create_resources()
        self.settings = PollerSettings.from_env(
            {
                **self.resources.env(),
                "AGENT_RUNTIME_ARN": RUNTIME_ARN,
                "POLLER_CONCURRENCY": "8",
                "POLLER_READ_TIMEOUT_S": f"{self.config.read_timeout_s:g}",
                "POLLER_LEASE_S": f"{self.config.lease_s:g}",
                "POLLER_SAFETY_MARGIN_S": "2",
            }
        )
        idle = self.config.idle_timeout_s if self.config.on("idle_timeout") else 300
        lifetime = self.config.max_lifetime_s if self.config.on("max_lifetime") else 900
        env = {
            **self.moto.env(),
            **self.resources.env(),
            "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": "",
            "CHAOS_GARBAGE_FLAG": str(self.garbage_flag),
            "CHAOS_GARBAGE_LOG": str(self.garbage_log),
            "CHAOS_GARBAGE_RATE": f"{self.config.garbage_rate:g}",
            "CHAOS_SEED": str(self.config.seed),
            # The fast completion path: agents signal finished jobs on this queue.
            "COMPLETION_QUEUE_URL": self.resources.completion_queue_url,
        }
        body_done = False
        try:
            with local_runtime(
                agent_cmd_line=CHAOS_AGENT_CMD,
                busy_policy=self.busy_policy,
                idle_timeout_s=idle,
                max_lifetime_s=lifetime,
                ping_interval_s=0.3,
                stop_grace_s=1,
                startup_timeout_s=40,
                env=env,
                extra_args=["--agent-log-dir", str(self.log_dir / "agents")],
                log_path=self.log_dir / "runtime.log",
            ) as runtime:
                self.runtime_url, self.runtime_pid = runtime.url, runtime.pid
                yield self
                body_done = True
        except AssertionError as exc:
            # Only local_runtime's own check on leaving (agent processes survived) is a
            # finding to report; an assertion failing inside the block fails the run.
            if not body_done:
                raise
            self.figures.violation("no-survivors", f"{self.name}: {exc}")

    def submit(
        self, session_id: str, payload: dict[str, Any], hostile: str | None = None
    ) -> str | None:
        """Send one submit (retrying with its client token); the job's id, or None when it
        was refused (a hostile submit's clear refusal) or never answered."""
        client = self.agentcore()
        body_bytes = json.dumps(payload).encode()
        what = f"{self.name}: {hostile or 'submit'}"
        for _attempt in range(40):
            try:
                answer = client.invoke_agent_runtime(
                    agentRuntimeArn=RUNTIME_ARN,
                    runtimeSessionId=session_id,
                    payload=body_bytes,
                )
                body = json.loads(answer["response"].read())
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                # A fresh session that no fault touches answers RuntimeClientError only when
                # its agent failed the request (HTTP 5xx or a dropped connection).
                if status >= 500 or (hostile is not None and code == "RuntimeClientError"):
                    self.figures.violation("answers", f"{what} got HTTP {status} {code}")
                    return None
                if code == "RetryableConflictException" and self.busy_policy == "reject":
                    self.figures.fault("busy_reject:submit refused")
                time.sleep(0.3)
                continue
            except (BotoCoreError, ValueError):
                time.sleep(0.3)
                continue
            return self._accepted(body, what, hostile)
        self.figures.event("submits given up")
        return None

    def _accepted(self, body: Any, what: str, hostile: str | None) -> str | None:
        if isinstance(body, dict) and body.get("status") == "RUNNING":
            return str(body["job_id"])
        if isinstance(body, dict) and isinstance(body.get("job_id"), str) and "status" in body:
            # A retry with the same client token found its job, already ended (its first
            # session died after accepting it): the same job, as the protocol promises.
            self.figures.event("submit retries answered with their ended job")
            return str(body["job_id"])
        error = body.get("error") if isinstance(body, dict) else None
        if (
            hostile is not None
            and isinstance(error, dict)
            and error.get("code") not in (None, ErrorCode.INTERNAL_ERROR)
            and isinstance(error.get("message"), str)
            and error["message"]
        ):
            with self.figures.lock:
                self.figures.hostile_refused += 1
            self.figures.event(f"hostile refused: {hostile} {error['code']}")
            return None
        self.figures.violation("answers", f"{what} answered {str(body)[:200]}")
        return None

    def session_worker(self, index: int) -> None:
        """Open sessions one after another, submit 1 to 3 jobs into each, wait for them."""
        rng = random.Random(f"{self.config.seed}/{self.name}/worker{index}")
        if index == 0 and self.config.on("idle_timeout"):
            self._leave_idle_session()
        while not self.stopping.is_set():
            taken, hostile = self.take_job()
            if not taken:
                return
            prefix = "chaos"
            if hostile is not None:
                prefix = "hostile"
            elif self.config.on("garbage_agent") and rng.random() < self.config.garbage_sessions:
                prefix = "garbage"
            session_id = f"{prefix}-{self.name}-{uuid.uuid4().hex}"
            if self.gate is not None and not self.gate.enter(self, session_id):
                return
            try:
                mine = self._fill_session(rng, session_id, hostile)
            finally:
                if self.gate is not None:
                    self.gate.leave(self, session_id)
            self._wait_terminal(mine, timeout_s=60)

    def _fill_session(self, rng: random.Random, session_id: str, hostile: str | None) -> list[str]:
        """Submit into one session: a hostile request alone, or 1 to 3 ordinary jobs."""
        assert self.resources is not None
        if hostile is not None:
            payload = hostile_payload(hostile, self.resources.bucket)
            job_id = self.submit(session_id, payload, hostile)
            if job_id is None:
                # Nothing runs in it: stop it now rather than hold a slot until it idles out.
                self._stop(session_id)
                return []
            with self._lock:
                self.plans[job_id] = JobPlan(
                    job_id, session_id, payload.get("input") or {}, hostile=hostile
                )
            self.figures.event(f"hostile accepted: {hostile}")
            return [job_id]
        mine: list[str] = []
        for n in range(rng.choice((1, 1, 2, 3))):
            if n and not self.take_job(ordinary_only=True)[0]:
                break
            job_input, extra = self._job_input(rng)
            outliving = self._take_outliving()
            if outliving:
                job_input.update(seconds=self.config.max_lifetime_s + 3, cpu=False)
            payload = {
                "action": "submit",
                "kind": "synthetic",
                "input": job_input,
                "client_token": uuid.uuid4().hex,
                **extra,
            }
            job_id = self.submit(session_id, payload)
            if job_id is None:
                continue
            plan = JobPlan(job_id, session_id, job_input, outliving=outliving)
            with self._lock:
                self.plans[job_id] = plan
            mine.append(job_id)
            if rng.random() < 0.05:
                time.sleep(rng.uniform(0.1, 0.6))
                plan.cancelled = self._cancel(session_id, job_id)
            time.sleep(rng.uniform(0.0, 0.4))
        return mine

    def _job_input(self, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
        big = rng.random() < 0.1
        job_input: dict[str, Any] = {
            "seconds": round(rng.uniform(0.1, 2.5), 3),
            "cpu": rng.random() < 0.1,
            "fail": "the job failed on purpose" if rng.random() < 0.1 else None,
            "result_bytes": 100_000 if big else rng.choice((0, 50, 500, 5000)),
        }
        if rng.random() < 0.04:
            job_input["seconds"] = 3.0
            return job_input, {"max_runtime_s": 1}
        return job_input, {}

    def _leave_idle_session(self) -> None:
        """A session asked only for its status and then left alone: no poller knows it, so
        only the idle timeout ends it (a short run may otherwise see none idle out)."""
        with suppress(ClientError, BotoCoreError):
            self.agentcore().invoke_agent_runtime(
                agentRuntimeArn=RUNTIME_ARN,
                runtimeSessionId=f"idle-{self.name}-{uuid.uuid4().hex}",
                payload=json.dumps({"action": "status"}).encode(),
            )["response"].read()

    def _take_outliving(self) -> bool:
        with self._lock:
            if self._outliving_left <= 0:
                return False
            self._outliving_left -= 1
            return True

    def _stop(self, session_id: str) -> bool:
        with suppress(ClientError, BotoCoreError):
            self.agentcore().stop_runtime_session(
                agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id, qualifier="DEFAULT"
            )
            return True
        return False

    def _cancel(self, session_id: str, job_id: str) -> bool:
        with suppress(ClientError, BotoCoreError):
            self.agentcore().invoke_agent_runtime(
                agentRuntimeArn=RUNTIME_ARN,
                runtimeSessionId=session_id,
                payload=json.dumps({"action": "cancel", "job_id": job_id}).encode(),
            )["response"].read()
            return True
        return False

    def _wait_terminal(self, job_ids: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while job_ids and time.monotonic() < deadline and not self.stopping.is_set():
            last = {j: (self.history.get(j) or ["?"])[-1] for j in job_ids}
            if all(status in TERMINAL for status in last.values()):
                return
            time.sleep(0.5)

    def poller(self, index: int) -> None:
        """One poller (a Lambda container): tick, pause, tick, ..., until told to stop."""
        assert self.settings is not None
        faults = PollerFaults(self, index)
        services = build_services(_HookedSession(self, faults), self.settings)
        rng = random.Random(f"{self.config.seed}/{self.name}/ticks{index}")
        while not self.stopping.is_set():
            context = LocalContext(budget_s=30)
            faults.new_pass(f"p{index}/{context.aws_request_id[:8]}")
            try:
                report = process_event({}, context, services)
                # Proof that pollers met: a lease another poller held made this one skip.
                skipped = sum(1 for step in report.steps.values() if step == "skipped")
                if skipped and self.injecting.is_set():
                    self.figures.fault("concurrent_pollers:lease held by another", skipped)
            except Killed:
                self.figures.event("poller passes killed")
            except StoreError:
                self.figures.event("poller passes failed (index read)")
            except Exception as exc:  # any other exception is a poller bug
                self.figures.violation(
                    "poller-errors", f"{self.name}: a poller pass raised {exc!r}"
                )
            with self._lock:
                self.ticks[index] += 1
            self.stopping.wait(rng.uniform(*self.config.tick_pause_s))

    def signal_poller(self) -> None:
        """The fast completion path: one poller fed by the completion queue, answering each
        batch as the Lambda handler does (ReportBatchItemFailures); the signals it does not
        report as failed are deleted, the others come back after the visibility timeout."""
        assert self.settings is not None and self.resources is not None
        handler = importlib.import_module("handler")
        faults = PollerFaults(self, 99)
        services = build_services(_HookedSession(self, faults), self.settings)
        sqs = self.aws("sqs")
        queue = self.resources.completion_queue_url
        while not self.stopping.is_set():
            try:
                batch = sqs.receive_message(
                    QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=5
                ).get("Messages", [])
            except (ClientError, BotoCoreError):
                continue
            if not batch:
                continue
            event = {"Records": [_sqs_record(m, queue) for m in batch]}
            context = LocalContext(budget_s=30)
            faults.new_pass(f"signal/{context.aws_request_id[:8]}")
            try:
                report = process_event(event, context, services)
                answer = handler.signal_batch_response(event, report, context)
            except Killed:
                self.figures.event("poller passes killed")
                continue
            except StoreError:
                self.figures.event("poller passes failed (index read)")
                continue
            except Exception as exc:  # any other exception is a poller bug
                self.figures.violation(
                    "poller-errors", f"{self.name}: a signal pass raised {exc!r}"
                )
                continue
            failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
            self.figures.event("completion signals handled")
            for message in batch:
                if message["MessageId"] not in failed:
                    with suppress(ClientError, BotoCoreError):
                        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    def injector(self) -> None:
        """Kill agent processes and stop sessions of running jobs, at random."""
        kinds = [k for k in ("agent_sigkill", "session_stop") if self.config.on(k)]
        targeted: set[str] = set()
        while kinds and not self.stopping.wait(self.rng.uniform(*self.config.injector_pause_s)):
            if not self.injecting.is_set():
                continue
            with self._lock:
                running = [
                    p
                    for j, p in self.plans.items()
                    if self._last(j) == "RUNNING" and p.session_id not in targeted
                ]
                spared = {p.session_id for p in self.plans.values() if p.outliving}
                running = [p for p in running if p.session_id not in spared]
            if not running:
                continue
            plan = self.rng.choice(running)
            targeted.add(plan.session_id)  # each session is hit once: a fault, not a siege
            if self.rng.choice(kinds) == "agent_sigkill":
                if self._sigkill(plan.session_id):
                    self.figures.fault("agent_sigkill")
            elif self._stop(plan.session_id):
                self.figures.fault("session_stop")

    def _sigkill(self, session_id: str) -> bool:
        victims = []
        for process in agent_processes_of(self.runtime_pid):
            with suppress(psutil.Error):
                if process.environ().get("AGENTCORE_SESSION_ID") == session_id:
                    victims.append(process)
        if not victims:
            return False
        victim = self.rng.choice(victims)
        with suppress(psutil.Error, ProcessLookupError):
            os.kill(victim.pid, signal.SIGKILL)
            return True
        return False

    def _last(self, job_id: str) -> str | None:
        history = self.history.get(job_id)
        return history[-1] if history else None

    def watch_once(self) -> dict[str, dict[str, Any]]:
        """Scan the table (the harness's view, not the poller's); record each job's status
        history and report any record that leaves a terminal status."""
        assert self.resources is not None
        items: dict[str, dict[str, Any]] = {}
        for page in (
            self.aws("dynamodb")
            .get_paginator("scan")
            .paginate(TableName=self.resources.table, ConsistentRead=True)
        ):
            for item in page["Items"]:
                items[item["job_id"]["S"]] = item
        with self._lock:
            for job_id, item in items.items():
                status = item.get("status", {}).get("S", "?")
                history = self.history[job_id]
                if history and history[-1] != status:
                    if history[-1] in TERMINAL:
                        self.figures.violation(
                            "no-regression",
                            f"{self.name}: job {job_id} went from {history[-1]} to {status}",
                        )
                    history.append(status)
                elif not history:
                    history.append(status)
        return items

    def watcher(self) -> None:
        """Watch status histories until told to stop."""
        while not self.stopping.wait(0.5):
            load = os.getloadavg()[0]
            with self.figures.lock:
                self.figures.peak_load = max(self.figures.peak_load, load)
            try:
                self.watch_once()
            except (ClientError, BotoCoreError) as exc:
                self.figures.event(f"watcher scan failed: {type(exc).__name__}")


def _sqs_record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    """An SQS message as Lambda's SQS event source hands it to a function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:{queue_url.rsplit('/', 1)[-1]}",
        "awsRegion": REGION,
    }


def inbox(world: World) -> dict[str, list[dict[str, Any]]]:
    """Every notification the inbox queue received, by job id (the `default` JSON)."""
    assert world.resources is not None
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in drain_inbox(world.aws("sqs"), world.resources.inbox_queue_url):
        document = message["document"]
        found[str(document.get("job_id"))].append(document)
    return found


def check_world(world: World, items: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Every invariant against the table, the bucket and the inbox; problems by invariant."""
    assert world.resources is not None
    problems: dict[str, list[str]] = {name: [] for name in INVARIANTS}
    s3 = world.aws("s3")
    bucket = world.resources.bucket

    def read(key: str) -> bytes | None:
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError:
            return None
        return body

    messages = inbox(world)
    sessions = _sessions(world)
    for job_id in world.plans:
        if job_id not in items:
            problems["terminal"].append(f"{job_id}: accepted but not in the table")
    for job_id, item in items.items():
        status = item.get("status", {}).get("S")
        world.figures.jobs_by_status[str(status)] += 1
        if status not in TERMINAL or schema.ATTENTION_KEY in item:
            problems["terminal"].append(f"{job_id}: {status}, attention={'attention' in item}")
            continue
        _check_outcome(world, job_id, item, read, problems["outcome"])
        _check_notified(world, job_id, item, messages.get(job_id, []), problems["notified"])
        _check_window(world, job_id, problems["duplicates"])
        finishes = [e for e in world.events.get(job_id, []) if e[1] == "finish-ok"]
        if len(finishes) > 1:
            problems["no-regression"].append(
                f"{job_id}: moved out of RUNNING {len(finishes)} times"
            )
        session_id = item.get("session_id", {}).get("S")
        if session_id and sessions.get(session_id, "Stopped") != "Stopped":
            problems["sessions-stopped"].append(f"{session_id}: {sessions[session_id]}")
    for job_id in messages:
        if job_id not in items:
            problems["notified"].append(f"notification for unknown job {job_id}")
    return problems


INVARIANTS = {
    "terminal": "every job terminal and off the attention index, within the tick bound",
    "outcome": "a stored outcome decides the status; SUCCEEDED results byte-identical",
    "notified": "every terminal job notified, with its job_id and final status",
    "duplicates": "duplicates only from the publish / notified_at window",
    "no-regression": "no record leaves a terminal status; one transition out of RUNNING",
    "sessions-stopped": "every job's session stopped once the job is collected",
    "no-survivors": "no agent process outlives its runtime",
    "poller-errors": "no poller pass or job raised anything but injected or AWS failures",
    "answers": "no INTERNAL_ERROR answer, no 5xx; hostile requests refused clearly or run",
    "faults-fired": "every enabled fault kind fired at least once",
    "harness": "the harness itself ran as planned (threads, submits, its own checks)",
}

# What the poller may log with an exception and still be healthy: an injected bug, or an
# AWS failure its adapters translated. Anything else (KeyError, a raw ClientError, ...)
# is a per-job exception that reconcile caught, logged and would otherwise hide.
_EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    InjectedError,
    StoreError,
    NotifyError,
    StopSessionError,
)


def _names(classes: tuple[type[BaseException], ...]) -> set[str]:
    found: set[str] = set()
    pending = list(classes)
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending += cls.__subclasses__()
    return found


def poller_log_problems(path: Path) -> list[str]:
    """Exceptions in the poller's JSON log that were neither injected nor AWS failures."""
    if not path.exists():
        return [f"no poller log at {path.name}"]
    expected = _names(_EXPECTED_ERRORS)
    found: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        name = record.get("exception_name")
        if (name is not None and name not in expected) or record.get("level") == "CRITICAL":
            where = record.get("job_id") or record.get("session_id") or "?"
            found.append(f"{record.get('message')} ({where}): {name}")
    return found


# What the agent logs when it answers INTERNAL_ERROR (its edge caught an exception).
_AGENT_INTERNAL_ERROR = "request failed in session"


def agent_log_problems(log_dir: Path) -> list[str]:
    """Requests an agent answered with INTERNAL_ERROR, from every session's log."""
    found: list[str] = []
    for log in sorted(log_dir.glob("*")):
        if not log.is_file():
            continue
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if _AGENT_INTERNAL_ERROR in line:
                found.append(f"{log.name}: {line.strip()[:200]}")
    return found


def unfired_faults(config: ChaosConfig, faults: Counter[str]) -> list[str]:
    """Enabled fault kinds that never fired: a run that did not test what it claims."""
    fired = Counter[str]()
    for name, n in faults.items():
        fired[name.split(":", 1)[0]] += n
    return [
        f"{kind} is on but fired 0 times"
        for kind in FAULT_KINDS
        if config.on(kind) and not fired[kind]
    ]


def _sessions(world: World) -> dict[str, str]:
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(f"{world.runtime_url}/sessions", timeout=10) as answer:
        listing = json.loads(answer.read())
    return {s["sessionId"]: s["state"] for s in listing["sessions"]}


def _check_outcome(
    world: World, job_id: str, item: dict[str, Any], read: Any, problems: list[str]
) -> None:
    status = item["status"]["S"]
    raw = read(schema.outcome_key(job_id))
    outcome = json.loads(raw) if raw else None
    plan = world.plans.get(job_id)
    if outcome is not None:
        expected = outcome.get("status")
        if expected == "FAILED" and (outcome.get("error") or {}).get("code") == "TIMED_OUT":
            expected = "TIMED_OUT"
        reason = item.get("error", {}).get("M", {}).get("message", {}).get("S", "")
        if status == "TIMED_OUT" and expected == "CANCELLED" and "ran longer than" in reason:
            # The poller timed the job out (no outcome then), and asked the agent to cancel
            # it, which stored CANCELLED: documented in operations.md.
            return
        if status != expected:
            problems.append(f"{job_id}: outcome {expected} but record {status} ({reason[:160]})")
            return
    if status != "SUCCEEDED":
        return
    if "result_uri" in item:
        stored = read(item["result_uri"]["S"].split("/", 3)[3])
    else:
        stored = item.get("result", {}).get("S", "").encode() if "result" in item else None
    if outcome is None:
        problems.append(f"{job_id}: SUCCEEDED without a stored outcome")
    want = plan.expected_result() if plan is not None else None
    if outcome is not None and want is None and "result" in outcome:
        want = encode_json(outcome["result"]).encode()
    if stored is None or (want is not None and stored != want):
        problems.append(f"{job_id}: stored result differs from the job's ({len(stored or b'')} B)")


def _check_notified(
    world: World, job_id: str, item: dict[str, Any], got: list[dict[str, Any]], problems: list[str]
) -> None:
    status = item["status"]["S"]
    if "notified_at" not in item:
        problems.append(f"{job_id}: {status} but notified_at never recorded")
    if not got:
        problems.append(f"{job_id}: {status} but no notification in the inbox")
    for document in got:
        if document.get("job_id") != job_id or document.get("status") != status:
            problems.append(f"{job_id}: notification says {document.get('status')}, not {status}")
    published = [e for e in world.events.get(job_id, []) if e[1] == "publish-ok"]
    if len(got) != len(published):
        problems.append(f"{job_id}: {len(got)} in the inbox, {len(published)} publishes seen")
    world.figures.duplicates += max(len(got) - 1, 0)


def _check_window(world: World, job_id: str, problems: list[str]) -> None:
    """A publish is allowed only while notified_at is not yet recorded: a second publish
    after a recorded notified_at is a duplicate outside the documented window."""
    events = sorted(world.events.get(job_id, []))
    recorded = [seq for seq, what, _ in events if what == "record-notified-ok"]
    if not recorded:
        return
    late = [
        (seq, who) for seq, what, who in events if what == "publish-start" and seq > recorded[0]
    ]
    if late:
        problems.append(f"{job_id}: published again after notified_at was recorded by {late}")


def _count_stops(world: World) -> None:
    log = world.log_dir / "runtime.log"
    if not log.exists():
        return
    for line in log.read_text(errors="replace").splitlines():
        match = re.search(r"stopped: (.+)$", line)
        if match and match.group(1) in STOP_REASONS:
            name = STOP_REASONS[match.group(1)]
            if name in FAULT_KINDS:
                world.figures.fault(name)
            else:
                world.figures.event(name)
    if world.garbage_log.exists():
        for variant in world.garbage_log.read_text().split():
            world.figures.fault(f"garbage_agent:{variant}")


@dataclass
class ChaosReport:
    """The run's figures, and whether each invariant held."""

    config: ChaosConfig
    figures: Figures
    problems: dict[str, list[str]]
    worlds: list[str]

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def text(self) -> str:
        """The figures, as `make chaos` prints them."""
        f, c = self.figures, self.config
        faults = Counter[str]()
        for name, n in f.faults.items():
            faults[name.split(":", 1)[0]] += n
        lines = [
            f"chaos run: seed {c.seed}, worlds {', '.join(self.worlds)}, "
            f"{c.pollers} pollers per world, {c.session_workers} session workers per world",
            f"jobs run: {f.jobs_submitted} accepted, {f.jobs_in_table} in the table; "
            + ", ".join(f"{s} {n}" for s, n in sorted(f.jobs_by_status.items())),
            f"hostile requests: {f.hostile_refused} refused with a clear error, "
            f"{sum(n for e, n in f.events.items() if e.startswith('hostile accepted'))} run",
            f"concurrency: at most {c.max_sessions} live sessions (peak {f.peak_sessions}), "
            f"{c.pollers if c.on('concurrent_pollers') else 1} scheduled + 1 fast-path poller "
            f"per world; peak load average {f.peak_load:.1f} on {machine_cores()} cores",
            "faults injected by kind:",
        ]
        for kind in FAULT_KINDS:
            detail = ", ".join(
                f"{name.split(':', 1)[1]} {n}"
                for name, n in sorted(f.faults.items())
                if name.startswith(f"{kind}:")
            )
            state = "" if c.on(kind) else " (off)"
            lines.append(
                f"  {kind:<20} {faults.get(kind, 0):>5}{state}"
                + (f"  ({detail})" if detail else "")
            )
        lines.append("invariants:")
        for name, text in INVARIANTS.items():
            found = self.problems.get(name, [])
            verdict = "held" if not found else f"VIOLATED x{len(found)}"
            lines.append(f"  {verdict:<14} {text}")
            lines += [f"      {p}" for p in found[:5]]
        lines += [
            f"duplicates seen: {f.duplicates} (each within the documented window)",
            f"time to quiesce: {f.quiesce_s:.1f} s, {f.quiesce_ticks} ticks "
            f"(bound {c.quiesce_tick_bound})",
            "other events: " + ", ".join(f"{k} {v}" for k, v in sorted(f.events.items())),
            f"wall time: {f.wall_s:.0f} s",
        ]
        return "\n".join(lines)


@contextmanager
def poller_logs_to(path: Path) -> Iterator[None]:
    """The poller's own Logger (JSON lines at INFO, as under Lambda), written to `path`."""
    importlib.import_module("handler")  # the Lambda entry module builds the `poller` Logger
    logger = logging.getLogger("poller")
    with open(path, "a", encoding="utf-8") as stream:
        previous = [
            (h, h.setStream(stream))
            for h in logger.handlers
            if isinstance(h, logging.StreamHandler)
        ]
        try:
            yield
        finally:
            for handler, old in previous:
                handler.setStream(old)


def run_chaos(config: ChaosConfig, moto: MotoEndpoint) -> ChaosReport:
    """Run the jobs through every world with faults on, stop injecting, tick until quiet,
    check the invariants."""
    started = time.monotonic()
    policies = ["accept", "reject"] if config.on("busy_reject") else ["accept"]
    share = [config.jobs // len(policies) + (i < config.jobs % len(policies)) for i in range(2)]
    # Each hostile request once per run, the worlds taking turns.
    worlds = [
        World(p, p, share[i], config, moto, sorted(HOSTILE)[i :: len(policies)])
        for i, p in enumerate(policies)
    ]
    total = Figures()
    problems: dict[str, list[str]] = {name: [] for name in INVARIANTS}
    pollers = config.pollers if config.on("concurrent_pollers") else 1
    gate = SessionGate(config.max_sessions, worlds)
    for world in worlds:
        world.gate = gate
    with ExitStack() as stack:
        stack.enter_context(poller_logs_to(config.log_dir / "poller.log"))
        for world in worlds:
            stack.enter_context(world.running())
        threads: list[threading.Thread] = []
        workers: list[threading.Thread] = []

        def start(target: Any, *args: Any) -> threading.Thread:
            def guarded() -> None:
                try:
                    target(*args)
                except BaseException as exc:  # a dead harness thread must fail the run
                    total.violation("harness", f"{target.__qualname__}{args} died: {exc!r}")

            thread = threading.Thread(target=guarded, daemon=True, name=target.__qualname__)
            thread.start()
            return thread

        for world in worlds:
            world.injecting.set()
            if config.on("garbage_agent"):
                world.garbage_flag.touch()
            threads.append(start(world.watcher))
            threads.append(start(world.injector))
            threads += [start(world.poller, i) for i in range(pollers)]
            threads.append(start(world.signal_poller))
            workers += [start(world.session_worker, i) for i in range(config.session_workers)]
        try:
            for thread in workers:
                thread.join()
        except BaseException:  # interrupted: stop every thread, then the ExitStack cleans up
            for world in worlds:
                world.stopping.set()
            raise
        # Faults off: the pollers go on, clean, until every job is collected.
        for world in worlds:
            world.injecting.clear()
            world.garbage_flag.unlink(missing_ok=True)
        quiet_at = time.monotonic()
        ticks_at = [dict(w.ticks) for w in worlds]
        _wait_quiet(worlds, config)
        total.quiesce_s = time.monotonic() - quiet_at
        total.quiesce_ticks = max(
            w.ticks[i] - t.get(i, 0) for w, t in zip(worlds, ticks_at, strict=True) for i in w.ticks
        )
        for world in worlds:
            world.stopping.set()
        for thread in threads:
            thread.join(timeout=60)
            if thread.is_alive():
                total.violation("harness", f"thread {thread.name} did not stop within 60 s")
        for world in worlds:
            items = world.watch_once()
            found = check_world(world, items)
            for name, entries in found.items():
                problems[name] += [f"[{world.name}] {e}" for e in entries]
            total.jobs_submitted += len(world.plans)
            total.jobs_in_table += len(items)
    for world in worlds:  # after the runtimes stopped: their survivor checks are in
        _count_stops(world)
        for invariant, text in world.figures.violations:
            problems.setdefault(invariant, []).append(text)
        problems["answers"] += [
            f"[{world.name}] INTERNAL_ERROR answered: {p}"
            for p in agent_log_problems(world.log_dir / "agents")
        ]
        total.faults.update(world.figures.faults)
        total.events.update(world.figures.events)
        total.jobs_by_status.update(world.figures.jobs_by_status)
        total.duplicates += world.figures.duplicates
        total.hostile_refused += world.figures.hostile_refused
        total.peak_load = max(total.peak_load, world.figures.peak_load)
        survivors = agent_processes_of(world.runtime_pid)
        if survivors:
            problems["no-survivors"].append(f"[{world.name}] {survivors}")
    for invariant, text in total.violations:
        problems.setdefault(invariant, []).append(text)
    problems["poller-errors"] += poller_log_problems(config.log_dir / "poller.log")
    problems["faults-fired"] += unfired_faults(config, total.faults)
    total.peak_sessions = gate.peak
    answered = total.jobs_submitted + total.hostile_refused
    if answered < config.jobs * config.min_accepted:
        problems["harness"].append(
            f"only {answered} of {config.jobs} submits accepted or refused as expected"
        )
    if total.quiesce_ticks > config.quiesce_tick_bound:
        problems["terminal"].append(
            f"took {total.quiesce_ticks} ticks to quiesce (bound {config.quiesce_tick_bound})"
        )
    total.wall_s = time.monotonic() - started
    return ChaosReport(config, total, problems, [w.name for w in worlds])


def _wait_quiet(worlds: list[World], config: ChaosConfig) -> None:
    deadline = time.monotonic() + config.quiesce_timeout_s
    while time.monotonic() < deadline:
        snapshot = [w.watch_once() for w in worlds]
        if all(
            item.get("status", {}).get("S") in TERMINAL and schema.ATTENTION_KEY not in item
            for items in snapshot
            for item in items.values()
        ):
            return
        time.sleep(0.5)
