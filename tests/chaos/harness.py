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
from jobpoller.context import LocalContext
from jobpoller.events import process_event
from jobpoller.services import build_services
from jobpoller.settings import PollerSettings

from agentjobs import schema
from agentjobs.protocol import TERMINAL_STATUSES, encode_json
from agentjobs.store import StoreError
from emulator.resources import LocalResources
from tests.support.aws import REGION, MotoEndpoint
from tests.support.inbox import drain_inbox
from tests.support.local_runtime import RUNTIME_ARN, agent_processes_of, local_runtime
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

    def expected_result(self) -> bytes | None:
        """The synthetic job's deterministic result bytes (None for a failing job)."""
        if self.job_input.get("fail") is not None:
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
    violations: list[str] = field(default_factory=list)
    duplicates: int = 0
    jobs_submitted: int = 0
    jobs_in_table: int = 0
    quiesce_s: float = 0.0
    quiesce_ticks: int = 0
    wall_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, kind: str, amount: int = 1) -> None:
        """Count one injected fault."""
        with self.lock:
            self.faults[kind] += amount

    def event(self, name: str) -> None:
        """Count something that happened (not a fault)."""
        with self.lock:
            self.events[name] += 1

    def violation(self, text: str) -> None:
        """Record a broken invariant."""
        with self.lock:
            self.violations.append(text)


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
                return decoded["job_id"]
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


class World:
    """One local runtime (one busy policy) with its own table, bucket, topic and inbox, and the
    threads that drive it: session workers (submit), pollers, an injector and a watcher."""

    def __init__(
        self, name: str, busy_policy: str, jobs: int, config: ChaosConfig, moto: MotoEndpoint
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
        self._jobs_left = jobs
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

    def take_job(self) -> bool:
        """Claim one of the jobs left to submit."""
        with self._lock:
            if self._jobs_left <= 0:
                return False
            self._jobs_left -= 1
            return True

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
        except AssertionError as exc:  # local_runtime's own check: agent processes survived
            self.figures.violation(f"{self.name}: {exc}")

    def submit(self, session_id: str, job_input: dict[str, Any], **extra: Any) -> str | None:
        """Submit one synthetic job (retrying with its client token); its id, or None."""
        client = self.agentcore()
        payload = {
            "action": "submit",
            "kind": "synthetic",
            "input": job_input,
            "client_token": uuid.uuid4().hex,
            **extra,
        }
        for _attempt in range(40):
            try:
                answer = client.invoke_agent_runtime(
                    agentRuntimeArn=RUNTIME_ARN,
                    runtimeSessionId=session_id,
                    payload=json.dumps(payload).encode(),
                )
                body = json.loads(answer["response"].read())
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code == "RetryableConflictException" and self.busy_policy == "reject":
                    self.figures.fault("busy_reject:submit refused")
                time.sleep(0.3)
                continue
            except (BotoCoreError, ValueError):
                time.sleep(0.3)
                continue
            if isinstance(body, dict) and body.get("status") == "RUNNING":
                return str(body["job_id"])
            if isinstance(body, dict) and isinstance(body.get("job_id"), str):
                # A retry with the same client token found its job, already ended (its first
                # session died after accepting it): the same job, as the protocol promises.
                self.figures.event("submit retries answered with their ended job")
                return str(body["job_id"])
            self.figures.violation(f"{self.name}: submit answered {str(body)[:200]}")
            return None
        self.figures.event("submits given up")
        return None

    def session_worker(self, index: int) -> None:
        """Open sessions one after another, submit 1 to 3 jobs into each, wait for them."""
        rng = random.Random(f"{self.config.seed}/{self.name}/worker{index}")
        while not self.stopping.is_set() and self.take_job():
            garbage = (
                self.config.on("garbage_agent") and rng.random() < self.config.garbage_sessions
            )
            session_id = f"{'garbage' if garbage else 'chaos'}-{self.name}-{uuid.uuid4().hex}"
            mine: list[str] = []
            for n in range(rng.choice((1, 1, 2, 3))):
                if n and not self.take_job():
                    break
                job_input, extra = self._job_input(rng)
                job_id = self.submit(session_id, job_input, **extra)
                if job_id is None:
                    continue
                plan = JobPlan(job_id, session_id, job_input)
                with self._lock:
                    self.plans[job_id] = plan
                mine.append(job_id)
                if rng.random() < 0.05:
                    time.sleep(rng.uniform(0.1, 0.6))
                    plan.cancelled = self._cancel(session_id, job_id)
                time.sleep(rng.uniform(0.0, 0.4))
            self._wait_terminal(mine, timeout_s=60)

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
                process_event({}, context, services)
            except Killed:
                self.figures.event("poller passes killed")
            except StoreError:
                self.figures.event("poller passes failed (index read)")
            except Exception as exc:  # any other exception is a poller bug
                self.figures.violation(f"{self.name}: a poller pass raised {exc!r}")
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
                self.figures.violation(f"{self.name}: a signal pass raised {exc!r}")
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
            if not running:
                continue
            plan = self.rng.choice(running)
            targeted.add(plan.session_id)  # each session is hit once: a fault, not a siege
            if self.rng.choice(kinds) == "agent_sigkill":
                if self._sigkill(plan.session_id):
                    self.figures.fault("agent_sigkill")
            else:
                with suppress(ClientError, BotoCoreError):
                    self.agentcore().stop_runtime_session(
                        agentRuntimeArn=RUNTIME_ARN,
                        runtimeSessionId=plan.session_id,
                        qualifier="DEFAULT",
                    )
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
                            f"{self.name}: job {job_id} went from {history[-1]} to {status}"
                        )
                    history.append(status)
                elif not history:
                    history.append(status)
        return items

    def watcher(self) -> None:
        """Watch status histories until told to stop."""
        while not self.stopping.wait(0.5):
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
    problems["no-regression"] += [v for v in world.figures.violations if "went from" in v]
    return problems


INVARIANTS = {
    "terminal": "every job terminal and off the attention index, within the tick bound",
    "outcome": "a stored outcome decides the status; SUCCEEDED results byte-identical",
    "notified": "every terminal job notified, with its job_id and final status",
    "duplicates": "duplicates only from the publish / notified_at window",
    "no-regression": "no record leaves a terminal status; one transition out of RUNNING",
    "sessions-stopped": "every job's session stopped once the job is collected",
    "no-survivors": "no agent process outlives its runtime",
    "poller-errors": "no poller pass raised anything but injected or AWS failures",
}


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
            "faults injected by kind:",
        ]
        for kind in FAULT_KINDS:
            if kind == "concurrent_pollers":
                on = c.on(kind)
                scheduled = c.pollers if on else 1
                lines.append(
                    f"  {kind:<20} {scheduled} scheduled + 1 fast-path poller at once per world"
                )
                continue
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
    worlds = [World(p, p, share[i], config, moto) for i, p in enumerate(policies)]
    total = Figures()
    problems: dict[str, list[str]] = {name: [] for name in INVARIANTS}
    pollers = config.pollers if config.on("concurrent_pollers") else 1
    with ExitStack() as stack:
        stack.enter_context(poller_logs_to(config.log_dir / "poller.log"))
        for world in worlds:
            stack.enter_context(world.running())
        threads: list[threading.Thread] = []
        workers: list[threading.Thread] = []

        def start(target: Any, *args: Any) -> threading.Thread:
            thread = threading.Thread(target=target, args=args, daemon=True)
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
        for world in worlds:
            items = world.watch_once()
            found = check_world(world, items)
            for name, entries in found.items():
                problems[name] += [f"[{world.name}] {e}" for e in entries]
            total.jobs_submitted += len(world.plans)
            total.jobs_in_table += len(items)
    for world in worlds:  # after the runtimes stopped: their survivor checks are in
        _count_stops(world)
        for v in world.figures.violations:
            if "outlived" in v:
                problems["no-survivors"].append(v)
            elif "poller pass raised" in v or "submit answered" in v:
                problems["poller-errors"].append(v)
        total.faults.update(world.figures.faults)
        total.events.update(world.figures.events)
        total.jobs_by_status.update(world.figures.jobs_by_status)
        total.duplicates += world.figures.duplicates
        survivors = agent_processes_of(world.runtime_pid)
        if survivors:
            problems["no-survivors"].append(f"[{world.name}] {survivors}")
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
