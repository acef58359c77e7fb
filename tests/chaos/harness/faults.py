"""The faults injected into a poller's AWS calls: which step a call begins, what answer it gets."""

from __future__ import annotations

import json
import random
import threading
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from botocore.exceptions import ReadTimeoutError as BotoReadTimeoutError

from testbed.aws import REGION
from tests.support.wire import dynamodb_error, s3_error, sns_error

if TYPE_CHECKING:
    from tests.chaos.harness.world import World

# The poller's steps for one job, as the AWS call that begins each (service.operation and
# a marker in the DynamoDB update expression).
STEPS: dict[str, tuple[str, str | None]] = {
    "lease": ("dynamodb.UpdateItem", "SET #lh = :me"),
    "poll": ("bedrock-agentcore.InvokeAgentRuntime", None),
    # A resumable job given a fresh session (a resume or a handoff), and a history append:
    # the poller's only PutItem.
    "resume": ("dynamodb.UpdateItem", "run_session_id"),
    "history": ("dynamodb.PutItem", None),
    "progress": ("dynamodb.UpdateItem", "last_seen_at = :at"),
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


class Killed(BaseException):
    """The poller's process died at this call: nothing after it reaches AWS."""


class InjectedError(Exception):
    """A poller bug injected between two steps of one job."""


def error_answer(service: str, mode: str, url: str) -> AWSResponse:
    """An HTTP error answer as the real service sends it (botocore parses and retries it)."""
    if service == "dynamodb":
        if mode == "throttle":
            return dynamodb_error(url, "ProvisionedThroughputExceededException", "chaos", 400)
        return dynamodb_error(url, "InternalServerError", "chaos", 500)
    if service == "s3":
        code, status = ("SlowDown", 503) if mode == "throttle" else ("InternalError", 500)
        return s3_error(url, code, "chaos", status)
    code, status = ("Throttling", 400) if mode == "throttle" else ("InternalError", 500)
    return sns_error(url, code, "chaos", status)


def step_of(operation: str, params: dict[str, Any]) -> str | None:
    """Which of the poller's steps an AWS call begins (None: another call)."""
    for step, (op, marker) in STEPS.items():
        if op == operation and (marker is None or marker in str(params.get("UpdateExpression"))):
            return step
    return None


def history_append(operation: str, params: dict[str, Any]) -> tuple[str, str] | None:
    """The job and event type of a history append (None: another call)."""
    item = params.get("Item")
    if operation != "dynamodb.PutItem" or not isinstance(item, dict) or "seq" not in item:
        return None
    return str(item.get("job_id", {}).get("S")), str(item.get("type", {}).get("S"))


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
        # This pass asked for the lease of a job the world keeps whole until its handoff.
        self.spares = False
        self._local = threading.local()
        self._lock = threading.Lock()

    def new_pass(self, pass_id: str) -> None:
        """A fresh Lambda invocation: alive again, perhaps armed to die at some step."""
        self.dead = False
        self.pass_id = pass_id
        self.armed = None
        self.spares = False
        if not self.world.injecting.is_set():
            return
        modes = [m for m in ("crash", "raise") if self.config.on(f"poller_{m}")]
        if not modes:
            return
        with self.world.figures.lock:
            fired = {name.split(":", 1)[0] for name in self.world.figures.faults}
        unfired = [m for m in modes if f"poller_{m}" not in fired]
        # Until a mode has fired in this world, every pass is armed with it: not every armed
        # step is reached, and at the random rate alone a short run's few armed passes saw a
        # mode never fire. Once each has, passes are armed at the random rate.
        if unfired or self.rng.random() < self.config.crash_rate:
            self.armed = (self.rng.choice(sorted(STEPS)), self.rng.choice(unfired or modes))

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
        context["chaos_params"] = params
        self._local.burst = None
        with self._lock:
            # Under the lock with the firing below: a pass that is not dead when it asks for a
            # spared job's lease dies in none of its threads after it.
            if self.dead:
                raise Killed(operation)
            if step == "lease" and job_id and self.world.awaits_handoff(job_id):
                self.spares = True
        if step == "publish" and job_id:
            self.world.log_event(job_id, seq, "publish-start", self.pass_id)
        appended = history_append(operation, params)
        if appended is not None:
            self.world.log_event(appended[0], seq, f"history-{appended[1]}-start", self.pass_id)
        with self._lock:
            armed, hit = self.armed, self.armed is not None and self.armed[0] == step
            if hit or self.spares:
                self.armed = None
            hit = hit and not self.spares
            if hit and armed is not None and armed[1] == "crash":
                self.dead = True
        if hit and armed is not None:
            self.world.figures.fault(f"poller_{armed[1]}:before-{step}")
            self.world.aborted_passes.add(self.pass_id)
            if armed[1] == "crash":
                raise Killed(step)
            raise InjectedError(f"injected bug before {step}")
        service = operation.split(".", 1)[0]
        kind = AWS_SERVICES.get(service)
        if (
            kind is not None
            and self.config.on(kind)
            and self.world.injecting.is_set()
            and not (job_id and self.world.awaits_handoff(job_id))
            and (
                _first_in_world(self.world, kind) or self.rng.random() < self.config.aws_fault_rate
            )
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
        if job_id and step in ("publish", "record-notified", "finish", "resume"):
            self.world.log_event(job_id, seq, f"{step}-ok", pass_id)
        appended = history_append(operation, context.get("chaos_params") or {})
        if appended is not None:
            self.world.log_event(appended[0], seq, f"history-{appended[1]}-ok", pass_id)
        kind = AWS_SERVICES.get(operation.split(".", 1)[0])
        if (
            kind is not None
            and operation in LOSABLE
            and self.config.on(kind)
            and self.world.injecting.is_set()
            and self.rng.random() < self.config.lost_answer_rate
        ):
            self.world.figures.fault(f"{kind}:answer lost")
            if job_id and step == "resume":
                # Applied, but the pass saw an error: it writes none of the resume's history.
                self.world.log_event(job_id, self.world.seq(), "resume-answer-lost", pass_id)
            raise BotoReadTimeoutError(endpoint_url="chaos://answer-lost")


_FIRST_LOCK = threading.Lock()


def _first_in_world(world: Any, kind: str) -> bool:
    """True once per world and AWS fault kind: the first call of each service while faults are
    injected always fails, so every enabled kind fires in a short run too (at the random rate
    alone, a 40-job run made few enough S3 calls that s3_fail sometimes never fired)."""
    with _FIRST_LOCK:
        seen: set[str] = world.__dict__.setdefault("_aws_kinds_faulted", set())
        if kind in seen:
            return False
        seen.add(kind)
        return True


class HookedSession:
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
        client = self._world.moto.client(service, endpoint_url=endpoint, config=config)
        self._faults.register(client)
        return client
