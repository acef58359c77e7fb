"""The agent on AgentCore Runtime: the runtime, its lifecycle, logs and execution role, wired."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.agent_artifact import (
    AGENT_PYTHON,
    AGENT_PYTHON_VERSION,
    DOCKERFILE,
    ENTRYPOINT,
    IMAGE_CONTEXTS,
    LEFT_OUT_OF_BUNDLE,
    LIBRARY_EXTRAS,
    agent_artifact,
    agent_bundle,
)
from infra.agent_role import (
    acknowledge_grants,
    execution_role,
    grant_job_data,
    grant_model,
    grant_platform,
    model_resources,
)
from infra.bundling import PROJECT_ROOT
from infra.completion import CompletionSignals
from infra.delivery_policy import DELIVERY_POLICY_ID, fix_delivery_policy
from infra.job_data import JobData
from infra.nag import default_policy, drop_redundant_depends_on
from infra.settings import ArtifactKind

__all__ = [
    "AGENT_PYTHON",
    "AGENT_PYTHON_VERSION",
    "DELIVERY_POLICY_ID",
    "DOCKERFILE",
    "ENTRYPOINT",
    "IMAGE_CONTEXTS",
    "LEFT_OUT_OF_BUNDLE",
    "LIBRARY_EXTRAS",
    "LOG_RETENTION",
    "VENDED_LOGS_PREFIX",
    "AgentRuntime",
    "AgentRuntimeProps",
    "agent_bundle",
    "model_resources",
]

LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
VENDED_LOGS_PREFIX = "/aws/vendedlogs/bedrock-agentcore"
"""Same-account delivery to a log group under /aws/vendedlogs/ needs no resource policy of
ours: CloudWatch Logs' log-delivery role may write there (aws-cdk-lib's Runtime docs for
manageDeliveryResourcePolicy, aws/aws-cdk PR #38372), so the default stack takes none of the
region's 10 CloudWatch Logs resource-policy slots (aws/aws-cdk#37956, #38342)."""


@dataclass(frozen=True)
class AgentRuntimeProps:
    """What the agent runs with."""

    job_data: JobData
    model_id: str
    idle_timeout: Duration
    max_lifetime: Duration
    artifact: ArtifactKind
    result_retention_days: int
    project_root: Path = PROJECT_ROOT
    completion: CompletionSignals | None = None
    """Where the agent signals finished jobs (the fast completion path); None: it does not."""
    tracing: bool = False
    """X-Ray trace delivery; it fails to create unless the account has CloudWatch
    Transaction Search on, so it is opt-in."""
    marketplace_product_id: str | None = None
    """The model's AWS Marketplace product: the agent may subscribe to it on first use."""
    agent_dir: Path | None = None
    """The folder deployed at the bundle's root; None: the project's own `agent_src`."""
    entrypoint: str = ENTRYPOINT
    """The file at the top of `agent_dir` that AgentCore runs."""


class AgentRuntime(Construct):
    """The AgentCore Runtime that runs agent_src/main.py, and exactly the rights it uses.

    The execution role is ours and the L2 gets it read-only (`without_policy_updates`): the
    L2 would otherwise grant read on the whole CDK assets bucket (every stack's templates
    and code) for the agent's zip, and no prop narrows that grant.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: AgentRuntimeProps) -> None:
        super().__init__(scope, construct_id)
        job_data = props.job_data
        stack = Stack.of(self)
        self.max_lifetime = props.max_lifetime
        self.application_logs = logs.LogGroup(
            self,
            "ApplicationLogs",
            log_group_name=f"{VENDED_LOGS_PREFIX}/{stack.stack_name}/application",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = execution_role(self, lambda: self.runtime.agent_runtime_name)
        artifact = agent_artifact(
            self,
            self.role,
            project_root=props.project_root,
            agent_dir=props.agent_dir,
            kind=props.artifact,
            entrypoint=props.entrypoint,
        )
        self.runtime = agentcore.Runtime(
            self,
            "Runtime",
            description="agentjobs: long-running agent jobs",
            agent_runtime_artifact=artifact,
            execution_role=self.role.without_policy_updates(),
            lifecycle_configuration=agentcore.LifecycleConfiguration(
                idle_runtime_session_timeout=props.idle_timeout,
                max_lifetime=props.max_lifetime,
            ),
            environment_variables={
                "JOBS_TABLE": job_data.table.table_name,
                "EVENTS_TABLE": job_data.events_table.table_name,
                "RESULTS_BUCKET": job_data.bucket.bucket_name,
                "MODEL_ID": props.model_id,
                "RESULT_RETENTION_DAYS": str(props.result_retention_days),
                **(
                    {"COMPLETION_QUEUE_URL": props.completion.queue.queue_url}
                    if props.completion is not None
                    else {}
                ),
            },
            tracing_enabled=props.tracing,
            # Without tracing, no resource policy at all (see VENDED_LOGS_PREFIX). With it,
            # the L2 builds the X-Ray delivery and its X-Ray resource policy as designed.
            manage_delivery_resource_policy=props.tracing,
            logging_configs=[
                agentcore.LoggingConfig(
                    log_type=agentcore.LogType.APPLICATION_LOGS,
                    destination=agentcore.LoggingDestination.cloud_watch_logs(
                        self.application_logs
                    ),
                )
            ],
        )
        grant_platform(self.role)
        grant_job_data(self.role, job_data)
        if props.completion is not None:
            props.completion.grant_signal(self.role)
        grant_model(self.role, props.model_id, props.marketplace_product_id)
        if props.tracing:
            fix_delivery_policy(self.application_logs)
        acknowledge_grants(
            self.role,
            job_data,
            model_id=props.model_id,
            pulls_image=props.artifact != "code",
            marketplace_product_id=props.marketplace_product_id,
        )
        self._tidy_dependencies()

    @property
    def arn(self) -> str:
        """The runtime's ARN, as InvokeAgentRuntime takes it."""
        return self.runtime.agent_runtime_arn

    @property
    def default_endpoint_arn(self) -> str:
        """The DEFAULT endpoint's ARN: invoking is authorized against it too."""
        return f"{self.runtime.agent_runtime_arn}/runtime-endpoint/DEFAULT"

    def _tidy_dependencies(self) -> None:
        cfn_runtime = self.runtime.node.default_child
        cfn_policy = default_policy(self.role).node.default_child
        assert isinstance(cfn_runtime, CfnResource)
        assert isinstance(cfn_policy, CfnResource)
        # The role is referenced by RoleArn already; its policy is not, and must exist first.
        drop_redundant_depends_on(cfn_runtime, keep=[cfn_policy])
        for child in self.runtime.node.children:
            if isinstance(child, logs.CfnDelivery):
                drop_redundant_depends_on(child)
