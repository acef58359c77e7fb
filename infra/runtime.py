"""The agent on AgentCore Runtime: code artifact (or Dockerfile), lifecycle, execution role."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Aws, CfnResource, Duration, RemovalPolicy
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from agentjobs.model_ids import split_profile
from infra.bundling import (
    PROJECT_ROOT,
    PythonBundle,
    SourceTree,
    bundling_options,
    requirements_from_pyproject,
    write_source_tree,
)
from infra.completion import CompletionSignals
from infra.job_store import JobStore
from infra.nag import (
    acknowledge,
    assets_bucket_objects,
    attribute_ref,
    default_policy,
    drop_redundant_depends_on,
    wildcard,
    wildcard_action,
)
from infra.settings import ArtifactKind

AGENT_PYTHON = agentcore.AgentCoreRuntime.PYTHON_3_13
AGENT_PYTHON_VERSION = AGENT_PYTHON.value.removeprefix("PYTHON_").replace("_", ".")
"""'3.13': pip fetches wheels built for the runtime's interpreter."""
ENTRYPOINT = "main.py"
DOCKERFILE = Path(__file__).with_name("agent.Dockerfile")
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


@dataclass(frozen=True)
class AgentRuntimeProps:
    """What the agent runs with."""

    store: JobStore
    model_id: str
    idle_timeout: Duration
    max_lifetime: Duration
    artifact: ArtifactKind
    result_retention_days: int
    project_root: Path = PROJECT_ROOT
    completion: CompletionSignals | None = None
    """Where the agent signals finished jobs (the fast completion path); None: it does not."""


def agent_bundle(project_root: Path) -> PythonBundle:
    """The agent's zip: agent_src at the root, the shared package, the agent's dependencies."""
    return PythonBundle(
        trees=_agent_trees(project_root),
        requirements=requirements_from_pyproject(project_root / "pyproject.toml", ["agent"]),
        python_version=AGENT_PYTHON_VERSION,
    )


def _agent_trees(project_root: Path) -> tuple[SourceTree, ...]:
    return (
        SourceTree(project_root / "agent_src"),
        # The CLI is the users' tool; the agent never imports it (nor typer/rich).
        SourceTree(project_root / "agentjobs", "agentjobs", exclude=("cli",)),
    )


def model_resources(model_id: str) -> tuple[list[str], list[str]]:
    """(inference-profile ARNs, foundation-model ARNs) that invoking `model_id` touches.

    A cross-region profile routes each request to the base model in any region of its
    group, so the base model is allowed in every region, but only through this profile.
    """
    partition, region, account = Aws.PARTITION, Aws.REGION, Aws.ACCOUNT_ID
    prefix, base = split_profile(model_id)
    if prefix is None:
        return [], [f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}"]
    profile = f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model_id}"
    models = [f"arn:{partition}:bedrock:*::foundation-model/{base}"]
    if prefix == "global":
        # Global profiles name the model without a region (AWS docs, global inference).
        models.append(f"arn:{partition}:bedrock:::foundation-model/{base}")
    return [profile], models


class AgentRuntime(Construct):
    """The AgentCore Runtime that runs agent_src/main.py, and exactly the rights it uses."""

    def __init__(self, scope: Construct, construct_id: str, *, props: AgentRuntimeProps) -> None:
        super().__init__(scope, construct_id)
        store = props.store
        self._code_asset = props.artifact == "code"
        self.application_logs = logs.LogGroup(
            self,
            "ApplicationLogs",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.runtime = agentcore.Runtime(
            self,
            "Runtime",
            description="agentjobs: long-running agent jobs",
            agent_runtime_artifact=self._artifact(props),
            lifecycle_configuration=agentcore.LifecycleConfiguration(
                idle_runtime_session_timeout=props.idle_timeout,
                max_lifetime=props.max_lifetime,
            ),
            environment_variables={
                "JOBS_TABLE": store.table.table_name,
                "RESULTS_BUCKET": store.bucket.bucket_name,
                "MODEL_ID": props.model_id,
                "RESULT_RETENTION_DAYS": str(props.result_retention_days),
                **(
                    {"COMPLETION_QUEUE_URL": props.completion.queue.queue_url}
                    if props.completion is not None
                    else {}
                ),
            },
            tracing_enabled=True,
            logging_configs=[
                agentcore.LoggingConfig(
                    log_type=agentcore.LogType.APPLICATION_LOGS,
                    destination=agentcore.LoggingDestination.cloud_watch_logs(
                        self.application_logs
                    ),
                )
            ],
        )
        self._grant_job_store(store)
        if props.completion is not None:
            props.completion.grant_signal(self.runtime.role)
        self._grant_model(props.model_id)
        self._acknowledge_generated_grants(store, props.model_id)
        self._tidy_dependencies()

    @property
    def arn(self) -> str:
        """The runtime's ARN, as InvokeAgentRuntime takes it."""
        return self.runtime.agent_runtime_arn

    @property
    def default_endpoint_arn(self) -> str:
        """The DEFAULT endpoint's ARN: invoking is authorized against it too."""
        return f"{self.runtime.agent_runtime_arn}/runtime-endpoint/DEFAULT"

    def _artifact(self, props: AgentRuntimeProps) -> agentcore.AgentRuntimeArtifact:
        root = props.project_root
        if props.artifact == "docker":
            # The Docker route: synth only stages a build context; `cdk deploy` builds it.
            context = root / ".build" / "agent-image"
            write_source_tree(_agent_trees(root), context)
            (context / "Dockerfile").write_text(DOCKERFILE.read_text())
            requirements = requirements_from_pyproject(root / "pyproject.toml", ["agent"])
            (context / "requirements.txt").write_text("\n".join(requirements) + "\n")
            return agentcore.AgentRuntimeArtifact.from_asset(
                str(context), platform=ecr_assets.Platform.LINUX_ARM64
            )
        bundle = agent_bundle(root)
        return agentcore.AgentRuntimeArtifact.from_code_asset(
            path=str(root / "agent_src"),
            runtime=AGENT_PYTHON,
            entrypoint=[ENTRYPOINT],
            **bundling_options(bundle, root / ".build"),
        )

    def _grant_job_store(self, store: JobStore) -> None:
        role = self.runtime.role
        # The agent writes the RUNNING record with a conditional put and reads records back;
        # the poller owns every later change, so no update or delete here.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="JobRecords",
                actions=["dynamodb:PutItem", "dynamodb:GetItem"],
                resources=[store.table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteResults",
                actions=["s3:PutObject"],
                resources=[store.bucket.arn_for_objects(f"{store.results_prefix}*")],
            )
        )
        # Reads: its own outcomes and the s3:// CSV inputs of data_report jobs, which users
        # may put anywhere in the bucket. ListBucket makes a missing key a 404, not a 403.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadInputs",
                actions=["s3:GetObject"],
                resources=[store.bucket.arn_for_objects("*")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListInputs",
                actions=["s3:ListBucket"],
                resources=[store.bucket.bucket_arn],
            )
        )
        store.key.grant_encrypt_decrypt(role)

    def _grant_model(self, model_id: str) -> None:
        profiles, models = model_resources(model_id)
        actions = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
        role = self.runtime.role
        if not profiles:
            role.add_to_principal_policy(
                iam.PolicyStatement(sid="InvokeModel", actions=actions, resources=models)
            )
            return
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="InvokeInferenceProfile", actions=actions, resources=profiles)
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeModelThroughProfile",
                actions=actions,
                resources=models,
                conditions={"StringEquals": {"bedrock:InferenceProfileArn": profiles[0]}},
            )
        )

    def _tidy_dependencies(self) -> None:
        cfn_runtime = self.runtime.node.default_child
        cfn_policy = default_policy(self.runtime.role).node.default_child
        assert isinstance(cfn_runtime, CfnResource)
        assert isinstance(cfn_policy, CfnResource)
        # The role is referenced by RoleArn already; its policy is not, and must exist first.
        drop_redundant_depends_on(cfn_runtime, keep=[cfn_policy])
        for child in self.runtime.node.children:
            if isinstance(child, logs.CfnDelivery):
                drop_redundant_depends_on(child)

    def _acknowledge_generated_grants(self, store: JobStore, model_id: str) -> None:
        bucket = attribute_ref(self, store.bucket.bucket_arn)
        logs_arn = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        agentcore_arn = "arn:<AWS::Partition>:bedrock-agentcore:<AWS::Region>:<AWS::AccountId>"
        findings = {
            wildcard(f"{logs_arn}/aws/bedrock-agentcore/runtimes/*"): "Added by the L2 "
            "Runtime: AgentCore names the runtime's log group after the runtime id, known "
            "only once it exists; scoped to AgentCore's runtime log groups.",
            wildcard(f"{logs_arn}/aws/bedrock-agentcore/runtimes/*:log-stream:*"): "Added by "
            "the L2 Runtime: log streams AgentCore creates per session in those groups.",
            wildcard(f"{logs_arn}*"): "Added by the L2 Runtime: logs:DescribeLogGroups "
            "supports no resource-level scoping.",
            wildcard("*"): "X-Ray trace and sampling actions support no resource-level "
            "scoping; cloudwatch:PutMetricData has none either and is limited to the "
            "bedrock-agentcore namespace by condition (both added by the L2 Runtime).",
            wildcard(f"{agentcore_arn}:workload-identity-directory/default/workload-identity/*"): (
                "Added by the L2 Runtime: the runtime's workload identity is created by "
                "AgentCore; token actions are scoped to the account's default directory."
            ),
            wildcard(f"{bucket}/{store.results_prefix}*"): "Results and outcomes are keyed by "
            "job id under the results prefix; the agent writes nothing else.",
            wildcard(f"{bucket}/*"): "data_report jobs read the s3:// CSV inputs users upload "
            "anywhere in this stack's results bucket (s3:GetObject only).",
            wildcard_action("kms:GenerateDataKey*"): "grant_encrypt_decrypt on the job store's "
            "key only: writing encrypted items and objects needs new data keys.",
            wildcard_action("kms:ReEncrypt*"): "grant_encrypt_decrypt on the job store's key only.",
        }
        if self._code_asset:
            findings |= {
                wildcard(assets_bucket_objects(self)): "Added by the L2 code artifact: "
                "AgentCore reads the agent's zip from the CDK bootstrap assets bucket.",
                wildcard_action("s3:GetObject*"): "Added by the L2 code artifact: read-only "
                "access to the agent's zip (asset.grantRead).",
                wildcard_action("s3:GetBucket*"): "Added by the L2 code artifact (grantRead).",
                wildcard_action("s3:List*"): "Added by the L2 code artifact (grantRead).",
            }
        for model in model_resources(model_id)[1]:
            if "*" in model:
                findings[wildcard(model.replace(Aws.PARTITION, "<AWS::Partition>"))] = (
                    "A cross-region inference profile serves each request from the base model "
                    "in any region of its group; allowed only through this profile (condition "
                    "bedrock:InferenceProfileArn)."
                )
        acknowledge(default_policy(self.runtime.role), findings)
