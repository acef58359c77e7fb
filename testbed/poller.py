"""Run the poller in-process against moto and the local AgentCore runtime, for tests and benches."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from botocore.config import Config

from emulator.resources import LocalResources
from emulator.stack.schedule import LambdaContext
from jobpoller.events import process_event
from jobpoller.report import TickReport
from jobpoller.services import PollerServices, services_from_clients
from jobpoller.settings import PollerSettings
from testbed.aws import REGION, MotoEndpoint
from testbed.inbox import drain_inbox
from testbed.local_runtime import (
    AGENT_CMD,
    RUNTIME_ARN,
    RuntimeProcess,
    agent_cmd,
    local_runtime,
)

BAD_AGENT_CMD = agent_cmd("bad_agent")
"""A stand-in agent that answers `result` badly, chosen by the session id's first word."""


def poller_settings(resources: LocalResources, **knobs: Any) -> PollerSettings:
    """Settings for these resources, as the handler would read them from its environment."""
    settings = PollerSettings.from_env(
        {
            "JOBS_TABLE": resources.table,
            "RESULTS_BUCKET": resources.bucket,
            "TOPIC_ARN": resources.topic_arn,
            "AGENT_RUNTIME_ARN": RUNTIME_ARN,
            "POLLER_READ_TIMEOUT_S": "10",
            "POLLER_LEASE_S": "30",
            "POLLER_SAFETY_MARGIN_S": "5",
        }
    )
    return replace(settings, **knobs)


@dataclass
class PollerRig:
    """A poller wired to moto and a local runtime, with the clients a test may hook."""

    moto: MotoEndpoint
    resources: LocalResources
    runtime: RuntimeProcess
    settings: PollerSettings

    def services(
        self, hook: Callable[[PollerServices, dict[str, Any]], None] | None = None
    ) -> PollerServices:
        """Fresh clients (so botocore hooks on them touch no other poller) and adapters."""
        aws = Config(
            max_pool_connections=self.settings.concurrency, retries={"total_max_attempts": 1}
        )
        clients = {
            "dynamodb": self.moto.client("dynamodb", config=aws),
            "s3": self.moto.client("s3", config=aws),
            "sns": self.moto.client("sns", config=aws),
            "agentcore": self.moto.client(
                "bedrock-agentcore",
                endpoint_url=self.runtime.url,
                config=Config(
                    retries={"total_max_attempts": 1},
                    read_timeout=self.settings.read_timeout_s,
                    connect_timeout=self.settings.connect_timeout_s,
                    max_pool_connections=self.settings.concurrency,
                ),
            ),
        }
        services = services_from_clients(self.settings, **clients)
        if hook is not None:
            hook(services, clients)
        return services

    def tick(
        self, services: PollerServices | None = None, event: object = None, budget_s: float = 60
    ) -> TickReport:
        """One handler pass (a scheduled tick unless `event` names jobs)."""
        return process_event(
            event or {}, LambdaContext(budget_s, REGION), services or self.services()
        )

    def submit(self, session_id: str, **job: Any) -> str:
        """Submit a job through the runtime; its job id."""
        answer = self.runtime.invoke(session_id, {"action": "submit", **job})
        assert answer.get("status") == "RUNNING", answer
        return str(answer["job_id"])

    def record(self, job_id: str) -> dict[str, Any]:
        """The job's raw item, read consistently."""
        item = self.moto.client("dynamodb").get_item(
            TableName=self.resources.table,
            Key={"job_id": {"S": job_id}},
            ConsistentRead=True,
        )["Item"]
        return dict(item)

    def status(self, job_id: str) -> str:
        """The job's status in the table."""
        return str(self.record(job_id)["status"]["S"])

    def in_flight(self) -> list[str]:
        """Job ids still on the attention index."""
        items = self.moto.client("dynamodb").scan(
            TableName=self.resources.table, FilterExpression="attribute_exists(attention)"
        )["Items"]
        return [i["job_id"]["S"] for i in items]

    def tick_until_done(
        self, job_ids: list[str], *, timeout_s: float = 60, services: PollerServices | None = None
    ) -> None:
        """Run ticks, a moment apart, until these jobs are off the attention index."""
        deadline = time.monotonic() + timeout_s
        # One poller's clients for all the ticks, as a warm Lambda keeps them between runs:
        # a fresh set per tick costs about 0.1 CPU-s and tests nothing more.
        services = services or self.services()
        while set(job_ids) & set(self.in_flight()):
            assert time.monotonic() < deadline, {j: self.record(j) for j in job_ids}
            self.tick(services)
            time.sleep(0.1)

    def inbox(self) -> list[dict[str, Any]]:
        """Every notification delivered to the inbox queue so far (the `default` JSON)."""
        return drain_inbox(self.moto.client("sqs"), self.resources.inbox_queue_url)

    def sessions(self) -> dict[str, dict[str, Any]]:
        """The local runtime's sessions by id."""
        return self.runtime.sessions()


@contextmanager
def poller_rig(
    moto: MotoEndpoint,
    resources: LocalResources,
    *,
    busy_policy: str = "accept",
    idle_timeout_s: float = 120,
    max_lifetime_s: float = 600,
    agent_cmd: str = AGENT_CMD,
    **knobs: Any,
) -> Iterator[PollerRig]:
    """A local runtime running the real agent on these resources, and a poller for them."""
    env = {**moto.env(), **resources.env(), "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": ""}
    with local_runtime(
        agent_cmd_line=agent_cmd,
        busy_policy=busy_policy,
        idle_timeout_s=idle_timeout_s,
        max_lifetime_s=max_lifetime_s,
        env=env,
    ) as runtime:
        yield PollerRig(moto, resources, runtime, poller_settings(resources, **knobs))


def wait_agent_status(
    rig: PollerRig, session_id: str, job_id: str, want: str, timeout_s: float = 30
) -> dict[str, Any]:
    """Ask the agent (not the table) until the job has status `want`; its answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = rig.runtime.invoke(session_id, {"action": "status", "job_id": job_id})
        if answer.get("status") == want:
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.1)


def inject_runtime_fault(
    rig: PollerRig, error: str, session_id: str, count: int, operation: str = "InvokeAgentRuntime"
) -> None:
    """Make the local runtime fail the next `count` calls on a session with `error`."""
    request = urllib.request.Request(
        f"{rig.runtime.url}/faults",
        data=json.dumps(
            {"error": error, "operation": operation, "sessionId": session_id, "count": count}
        ).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def stop_session(rig: PollerRig, session_id: str) -> None:
    """Stop a session from outside the poller (as an idle timeout or a crash would)."""
    rig.runtime.client().stop_runtime_session(
        agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=session_id, qualifier="DEFAULT"
    )
