"""One world of a chaos run: its own moto resources, runtime, pollers and session workers."""

from __future__ import annotations

import importlib
import itertools
import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psutil
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from agentjobs.invocation import DEFAULT_QUALIFIER, invoke_session
from agentjobs.protocol import ErrorCode
from agentjobs.store import StoreError
from emulator.resources import LocalResources
from emulator.stack.event_source import run_event_source
from emulator.stack.schedule import LambdaContext
from jobpoller.events import process_event
from jobpoller.services import build_services
from jobpoller.settings import PollerSettings
from testbed.aws import REGION, MotoEndpoint
from testbed.local_runtime import (
    RUNTIME_ARN,
    RuntimeProcess,
    local_runtime,
    session_processes,
)
from tests.chaos.chaos_agent import SURE_PREFIX
from tests.chaos.harness.durable import RESUMABLE_SHARE, resumable_input
from tests.chaos.harness.faults import HookedSession, Killed, PollerFaults
from tests.chaos.harness.plan import (
    CHAOS_AGENT_CMD,
    HOSTILE,
    TERMINAL,
    ChaosConfig,
    Figures,
    JobPlan,
    hostile_payload,
)

IDLE_PREFIX = "idle-"


class SessionGate:
    """Room for a new session only while fewer than `limit` sessions are live across every
    world: those the runtimes list as not stopped, and those being filled right now."""

    def __init__(self, limit: int, worlds: list[World]) -> None:
        self.limit = max(limit, 1)
        self.worlds = worlds
        self.peak = 0
        self.waited_s = 0.0  # by every session worker, in all
        self._filling: set[str] = set()
        self._lock = threading.Lock()

    def _live(self) -> set[str]:
        live = set(self._filling)
        for world in self.worlds:
            # A session left idle (to idle out) holds a process but no CPU: no room taken.
            live |= {
                f"{world.name}/{s}"
                for s, state in world_sessions(world).items()
                if state != "Stopped" and not s.startswith(IDLE_PREFIX)
            }
        return live

    def enter(self, world: World, session_id: str) -> bool:
        """Wait for room and take it for this session; False when the world is stopping."""
        key = f"{world.name}/{session_id}"
        started = time.monotonic()
        while not world.stopping.is_set():
            with self._lock:
                try:
                    live = len(self._live())
                except OSError:  # a runtime too busy to list its sessions: no room yet
                    live = self.limit
                if live < self.limit:
                    self._filling.add(key)
                    self.peak = max(self.peak, live + 1)
                    self.waited_s += time.monotonic() - started
                    return True
            world.stopping.wait(0.3)
        return False

    def leave(self, world: World, session_id: str) -> None:
        """The session is filled: from now on the runtime's listing counts it."""
        with self._lock:
            self._filling.discard(f"{world.name}/{session_id}")


class World:
    """One local runtime (one busy policy) with its own table, bucket, topic and inbox, and the
    threads that drive it: session workers (submit), pollers, an injector and a watcher.

    Whatever its draws, a world with the kinds on meets each of them, so that a short run
    tests what it claims: an idle session idles out; two outliving jobs come first, one
    reaching its session's max lifetime, one resumable and handed off (no poller pass that
    leases it dies until then); a resumable target job
    is the injector's first hit (and resumed after that loss); the injector's first hits
    take each kind in turn, as the pollers' first armed passes do; the first session after
    the outliving jobs' is a garbage one that garbles its first `result` answer for sure; and
    each AWS service's first call under faults fails (faults.py)."""

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
        self.aborted_passes: set[str] = set()  # passes a crash or raise cut short
        self.active: dict[str, str] = {}  # job id -> the session its attempt runs in
        self.runs_log = self.log_dir / "runs.log"  # every run of a job (chaos_agent.py)
        self.ticks: Counter[int] = Counter()
        self._jobs = jobs
        self._jobs_taken = 0
        variants = (hostile if hostile is not None else sorted(HOSTILE)) if config.hostile else []
        # Hostile submits spread evenly over the world's jobs, so a short run meets them all:
        # in groups of `hostile_per_session`, each group one session's, taking as many places.
        size = max(self.config.hostile_per_session, 1)
        groups = [variants[i : i + size] for i in range(0, len(variants), size)]
        self._hostile_at = {
            min((g + 1) * jobs // (len(groups) + 1), jobs - len(group)): group
            for g, group in enumerate(groups)
            if jobs >= len(group)
        }
        self.gate: SessionGate | None = None
        # Jobs that outlive their session's max lifetime: without them a short run may see
        # no session reach it (sessions end sooner when their jobs are short).
        self._outliving_left = 2 if config.on("max_lifetime") else 0
        # The world's first ordinary job after those is its target: resumable, long enough to
        # be running when hit, and the injector's first hit. A short run's random hits may
        # otherwise meet no resumable job, and resume none after a loss.
        kills = config.on("agent_sigkill") or config.on("session_stop")
        self._target_left = 1 if kills else 0
        self._target_hit = False
        # The world's first ordinary session after the outliving jobs' is a garbage one (the
        # share is a draw after it); the outliving jobs are kept clear of its garbled answers.
        self._garbage_left = 1 if config.on("garbage_agent") else 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a watch_once saw the table
        self._seq = itertools.count()
        self.resources: LocalResources | None = None
        self.runtime: RuntimeProcess | None = None
        self.runtime_url = ""
        self.runtime_pid = 0
        self.settings: PollerSettings | None = None

    # Shared bookkeeping

    def seq(self) -> int:
        """A global order of observed calls."""
        return next(self._seq)

    def awaits_handoff(self, job_id: str) -> bool:
        """Whether this is the world's outliving resumable job, not yet given a fresh session:
        a poller pass that dies holding its lease (6 s), or AWS faults on its calls (retried
        with backoff), would outlast the handoff's window (the margin before the max
        lifetime), so until then no pass that leases it dies and its calls do not fail
        (faults.py)."""
        with self._lock:
            plan = self.plans.get(job_id)
            if plan is None or not plan.outliving or plan.max_attempts <= 1:
                return False
            return not any(what == "resume-ok" for _, what, _ in self.events.get(job_id, ()))

    def log_event(self, job_id: str, seq: int, what: str, pass_id: str) -> None:
        """Remember that a pass began or completed a publish, finish or notified_at write."""
        with self._lock:
            self.events[job_id].append((seq, what, pass_id))

    def take_job(self, ordinary_only: bool = False) -> tuple[bool, list[str]]:
        """Claim one of the jobs left to submit: whether there was one, and the hostile
        variants it is to be, if any (with `ordinary_only`, hostile ones are left for the
        next session: hostile requests get sessions of their own)."""
        with self._lock:
            index = self._jobs_taken
            hostile = self._hostile_at.get(index, [])
            if index >= self._jobs or (ordinary_only and hostile):
                return False, []
            self._jobs_taken += max(len(hostile), 1)
            return True, list(hostile)

    # Clients without hooks, for the harness itself

    def aws(self, service: str) -> Any:
        return self.moto.client(service)

    def agentcore(self) -> Any:
        return self.moto.client(
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
        idle = self.config.idle_timeout_s if self.config.on("idle_timeout") else 300
        lifetime = self.config.max_lifetime_s if self.config.on("max_lifetime") else 900
        self.settings = PollerSettings.from_env(
            {
                **self.resources.env(),
                "AGENT_RUNTIME_ARN": RUNTIME_ARN,
                "POLLER_CONCURRENCY": "8",
                "POLLER_READ_TIMEOUT_S": f"{self.config.read_timeout_s:g}",
                "POLLER_LEASE_S": f"{self.config.lease_s:g}",
                "POLLER_SAFETY_MARGIN_S": "2",
                # Resumable jobs move to a fresh session this long before the runtime's max
                # lifetime ends theirs.
                "POLLER_SESSION_MAX_LIFETIME_S": f"{lifetime:g}",
                "POLLER_HANDOFF_MARGIN_S": f"{self.config.handoff_margin_s:g}",
            }
        )
        env = {
            **self.moto.env(),
            **self.resources.env(),
            "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": "",
            "CHAOS_GARBAGE_FLAG": str(self.garbage_flag),
            "CHAOS_GARBAGE_LOG": str(self.garbage_log),
            "CHAOS_GARBAGE_RATE": f"{self.config.garbage_rate:g}",
            "CHAOS_SEED": str(self.config.seed),
            "CHAOS_RUNS_LOG": str(self.runs_log),
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
                self.runtime = runtime
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
        # Not invoke_session: its compact UTF-8 encoding cannot carry the lone surrogates of
        # the hostile requests, which travel as json.dumps's ASCII escapes.
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
        hostile: list[str] = []  # hostile requests left from this worker's last session
        while not self.stopping.is_set():
            if not hostile:
                taken, hostile = self.take_job()
                if not taken:
                    return
            prefix = "chaos-"
            if hostile:
                prefix = "hostile-"
            elif self._outliving_left == 0 and self._take("_garbage_left"):
                prefix = SURE_PREFIX  # its first `result` answer garbled for sure
            elif self.config.on("garbage_agent") and rng.random() < self.config.garbage_sessions:
                prefix = "garbage-"
            session_id = f"{prefix}{self.name}-{uuid.uuid4().hex}"
            if self.gate is not None and not self.gate.enter(self, session_id):
                return
            try:
                mine = self._fill_session(rng, session_id, hostile)
            finally:
                if self.gate is not None:
                    self.gate.leave(self, session_id)
            self._wait_terminal(mine, timeout_s=60)

    def _fill_session(self, rng: random.Random, session_id: str, hostile: list[str]) -> list[str]:
        """Submit into one session: hostile requests alone, or 1 to 3 ordinary jobs."""
        if hostile:
            return self._fill_hostile(session_id, hostile)
        mine: list[str] = []
        for n in range(rng.choice((1, 1, 2, 3))):
            if n and not self.take_job(ordinary_only=True)[0]:
                break
            resumable = rng.random() < RESUMABLE_SHARE
            seconds = self.config.resumable_seconds
            job_input, extra = resumable_input(rng, seconds) if resumable else self._job_input(rng)
            outliving_left = self._take("_outliving_left")
            outliving = outliving_left > 0
            # A session's first job only: never beside an outliving job, which the injector spares.
            target = n == 0 and not outliving and self._take("_target_left") > 0
            if outliving or target:
                # Nothing may end these early (a failure on purpose, a transient failure, a
                # short max runtime, a cancel) before they meet what they are for.
                if target or outliving_left == 1:
                    # A world's second outliving job is resumable: handed off before its
                    # session's max lifetime ends, or resumed after; its first is not, and
                    # its session reaches the max lifetime.
                    job_input, extra = resumable_input(rng, seconds)
                    job_input.pop("fail_attempts", None)
                else:
                    job_input, extra = self._job_input(rng)
                    extra = {}
                # The target runs long enough to be hit while it works, not once it has ended.
                length = self.config.max_lifetime_s + 3 if outliving else 2 * max(seconds)
                job_input.update(seconds=length, cpu=False, fail=None)
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
            plan = JobPlan(
                job_id,
                session_id,
                job_input,
                outliving=outliving,
                max_attempts=int(extra.get("max_attempts", 1)),
                target=target,
            )
            with self._lock:
                self.plans[job_id] = plan
            mine.append(job_id)
            if plan.max_attempts == 1 and not outliving and rng.random() < 0.05:
                time.sleep(rng.uniform(0.1, 0.6))
                plan.cancelled = self._cancel(session_id, job_id)
            time.sleep(rng.uniform(0.0, 0.4))
        return mine

    def _fill_hostile(self, session_id: str, variants: list[str]) -> list[str]:
        """Hostile requests into one session, taken from `variants` one after another while
        each is refused (a refused one leaves nothing running there); one accepted has the
        session to itself, and the rest stay in `variants` for the next session."""
        assert self.resources is not None
        while variants:
            hostile = variants.pop(0)
            payload = hostile_payload(hostile, self.resources.bucket)
            job_id = self.submit(session_id, payload, hostile)
            if job_id is None:
                continue
            with self._lock:
                self.plans[job_id] = JobPlan(
                    job_id, session_id, payload.get("input") or {}, hostile=hostile
                )
            self.figures.event(f"hostile accepted: {hostile}")
            return [job_id]
        # Nothing runs in it: stop it now rather than hold a slot until it idles out.
        self._stop(session_id)
        return []

    def _job_input(self, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
        big = rng.random() < 0.1
        job_input: dict[str, Any] = {
            "seconds": round(rng.uniform(*self.config.job_seconds), 3),
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
            session_id = f"{IDLE_PREFIX}{self.name}-{uuid.uuid4().hex}"
            invoke_session(self.agentcore(), RUNTIME_ARN, session_id, {"action": "status"})

    def _take(self, counter: str) -> int:
        """Take one of the world's special jobs or sessions left (`counter` names them): how
        many were left, this one included (0: none)."""
        with self._lock:
            left: int = getattr(self, counter)
            if left <= 0:
                return 0
            setattr(self, counter, left - 1)
            return left

    def _stop(self, session_id: str) -> bool:
        with suppress(ClientError, BotoCoreError):
            self.agentcore().stop_runtime_session(
                agentRuntimeArn=RUNTIME_ARN,
                runtimeSessionId=session_id,
                qualifier=DEFAULT_QUALIFIER,
            )
            return True
        return False

    def _cancel(self, session_id: str, job_id: str) -> bool:
        with suppress(ClientError, BotoCoreError):
            payload = {"action": "cancel", "job_id": job_id}
            invoke_session(self.agentcore(), RUNTIME_ARN, session_id, payload)
            return True
        return False

    def _wait_terminal(self, job_ids: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while job_ids and not self.stopping.is_set():
                last = {j: (self.history.get(j) or ["?"])[-1] for j in job_ids}
                left = deadline - time.monotonic()
                if left <= 0 or all(status in TERMINAL for status in last.values()):
                    return
                # Woken by the watcher's next scan; the timeout only bounds a stop's delay.
                self._changed.wait(min(left, 1.0))

    def poller(self, index: int) -> None:
        """One poller (a Lambda container): tick, pause, tick, ..., until told to stop."""
        assert self.settings is not None
        faults = PollerFaults(self, index)
        services = build_services(HookedSession(self, faults), self.settings)
        rng = random.Random(f"{self.config.seed}/{self.name}/ticks{index}")
        while not self.stopping.is_set():
            context = LambdaContext(30, REGION)
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
        services = build_services(HookedSession(self, faults), self.settings)

        def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
            # A pass that did not answer hands every signal back, as a failed Lambda would.
            every_signal = [{"itemIdentifier": r["messageId"]} for r in event["Records"]]
            faults.new_pass(f"signal/{context.aws_request_id[:8]}")
            try:
                report = process_event(event, context, services)
                answer: dict[str, Any] = handler.signal_batch_response(event, report, context)
            except Killed:
                self.figures.event("poller passes killed")
                return {"batchItemFailures": every_signal}
            except StoreError:
                self.figures.event("poller passes failed (index read)")
                return {"batchItemFailures": every_signal}
            except Exception as exc:  # any other exception is a poller bug
                self.figures.violation(
                    "poller-errors", f"{self.name}: a signal pass raised {exc!r}"
                )
                return {"batchItemFailures": every_signal}
            self.figures.event("completion signals handled")
            return answer

        run_event_source(
            handle,
            self.aws("sqs"),
            self.resources.completion_queue_url,
            timeout_s=30,
            region=REGION,
            stop=self.stopping,
            visibility_timeout_s=5,
        )

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
                    if self._last(j) == "RUNNING"
                    and self.active.get(j, p.session_id) not in targeted
                ]
                spared = {p.session_id for p in self.plans.values() if p.outliving}
                # The target, once hit, is spared too: resumed once, it ends as it should.
                running = [
                    p
                    for p in running
                    if p.session_id not in spared and not (p.target and self._target_hit)
                ]
                first = [p for p in running if p.target]
            if not running:
                continue
            plan = first[0] if first else self.rng.choice(running)
            # A resumed job is hit where it runs now, so it may lose more than one session.
            session_id = self.active.get(plan.job_id, plan.session_id)
            # Each kind not yet fired in this world first (the worlds in opposite orders), so
            # a short run's few hits cover both.
            order = kinds if self.busy_policy == "accept" else kinds[::-1]
            unfired = [k for k in order if not self.figures.faults[k]]
            kind = unfired[0] if unfired else self.rng.choice(kinds)
            hit = self._sigkill(session_id) if kind == "agent_sigkill" else self._stop(session_id)
            if hit:
                self.figures.fault(kind)
                targeted.add(session_id)  # each session is hit once: a fault, not a siege
                if plan.target:
                    self._target_hit = True

    def _sigkill(self, session_id: str) -> bool:
        victims = session_processes(self.runtime_url, self.runtime_pid, session_id)
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
                active = item.get("run_session_id", item.get("session_id", {})).get("S")
                if active:
                    self.active[job_id] = active
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
            self._changed.notify_all()
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


def world_sessions(world: World) -> dict[str, str]:
    """Each session's state, as the world's local runtime lists them."""
    assert world.runtime is not None
    return {session_id: s["state"] for session_id, s in world.runtime.sessions().items()}
