"""The poller's in-process rig: moto's mock_aws for AWS and an AgentCore data plane answered at
botocore's transport, wired into PollerServices as the Lambda handler wires them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from moto import mock_aws

from emulator.resources import LocalResources, create_resources
from jobpoller.services import PollerServices, services_from_clients
from jobpoller.settings import PollerSettings
from testbed.aws import SharedSession

RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/unit-agent"
AGENTCORE_URLS = r"https://bedrock-agentcore\..*"
SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"

BeforeSend = Callable[..., AWSResponse]
"""botocore's `before-send` hook for AgentCore: the answer to one request."""


@dataclass(frozen=True)
class Rig:
    """moto's AWS in this process, its resources, and the poller's services over them."""

    session: SharedSession
    resources: LocalResources
    services: PollerServices


def session_of(request: Any) -> str:
    """The session id an AgentCore request names."""
    session_id = request.headers.get(SESSION_HEADER)
    return str(session_id.decode() if isinstance(session_id, bytes) else session_id)


@contextmanager
def poller_rig(
    monkeypatch: pytest.MonkeyPatch, before_send: BeforeSend, **env: str
) -> Iterator[Rig]:
    """moto's AWS with the local stack's resources, and poller services whose AgentCore calls
    `before_send` answers; `env` adds poller settings (POLLER_MAX_POLL_FAILURES is 2)."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # moto's AgentCore has no data plane: its calls pass through to the agent's transport.
    with mock_aws(config={"core": {"passthrough": {"urls": [AGENTCORE_URLS]}}}):
        session = SharedSession()
        resources = create_resources(session, "unit")
        settings = PollerSettings.from_env(
            {
                "JOBS_TABLE": resources.table,
                "RESULTS_BUCKET": resources.bucket,
                "TOPIC_ARN": resources.topic_arn,
                "AGENT_RUNTIME_ARN": RUNTIME_ARN,
                "POLLER_MAX_POLL_FAILURES": "2",
                **env,
            }
        )
        agentcore = session.client(
            "bedrock-agentcore", config=Config(retries={"total_max_attempts": 1})
        )
        agentcore.meta.events.register("before-send.bedrock-agentcore", before_send)
        services = services_from_clients(
            settings,
            dynamodb=session.client("dynamodb"),
            s3=session.client("s3"),
            sns=session.client("sns"),
            agentcore=agentcore,
        )
        yield Rig(session, resources, services)
