"""Build the poller's adapters from boto3 clients (the handler's, or a test's with hooks)."""

from __future__ import annotations

from typing import Any

from botocore.config import Config

from agentjobs.notifier import Notifier
from agentjobs.store import JobStore, ResultStore
from jobpoller.agentcore import AgentRuntime, agentcore_client
from jobpoller.reconcile import PollerServices
from jobpoller.settings import PollerSettings


def services_from_clients(
    settings: PollerSettings, *, dynamodb: Any, s3: Any, sns: Any, agentcore: Any
) -> PollerServices:
    """The poller's adapters over the given clients."""
    return PollerServices(
        store=JobStore(dynamodb, settings.jobs_table),
        results=ResultStore(s3, settings.results_bucket),
        agent=AgentRuntime(agentcore, settings.agent_runtime_arn, settings.qualifier),
        notifier=Notifier(sns, settings.topic_arn),
        settings=settings,
    )


def build_services(session: Any, settings: PollerSettings) -> PollerServices:
    """The poller's adapters over fresh clients of a boto3 session (endpoints and region
    come from the environment, so the same code reaches AWS or the local stack)."""
    # Enough pooled connections for every worker thread; the store's calls are idempotent
    # or conditional, so the standard retries stay on for them.
    aws = Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=max(settings.read_timeout_s, 10.0),
        max_pool_connections=settings.concurrency,
        retries={"mode": "standard", "total_max_attempts": 3},
    )
    return services_from_clients(
        settings,
        dynamodb=session.client("dynamodb", config=aws),
        s3=session.client("s3", config=aws),
        sns=session.client("sns", config=aws),
        agentcore=agentcore_client(session, settings),
    )
