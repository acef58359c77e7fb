"""The agent's execution role: its trust, its grants, and why each wildcard left is needed."""

from __future__ import annotations

from collections.abc import Callable

import jsii
from aws_cdk import ArnFormat, Aws, Duration, IStableStringProducer, Lazy, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from agentjobs import schema
from agentjobs.model_ids import split_profile
from infra.job_data import JobData
from infra.nag import acknowledge, attribute_ref, default_policy, wildcard


@jsii.implements(IStableStringProducer)
class _Later:
    """A string known only once the construct tree is built (for `Lazy.string`)."""

    def __init__(self, produce: Callable[[], str]) -> None:
        self._produce = produce

    def produce(self) -> str:
        return self._produce()


def execution_role(scope: Construct, runtime_name: Callable[[], str]) -> iam.Role:
    """The role AgentCore assumes for the runtime named `runtime_name()`, and nothing else.

    `runtime_name` is called once the construct tree is built: the role comes before the
    runtime that is named after it.
    """
    # The trust the L2 would give its own role: AgentCore, for this account's runtime
    # of this name only (confused deputy). The name is generated when the tree is built.
    stack = Stack.of(scope)
    runtime_arn = Lazy.string(
        _Later(
            lambda: stack.format_arn(
                service="bedrock-agentcore",
                resource="runtime",
                resource_name=f"{runtime_name()}*",
            )
        )
    )
    return iam.Role(
        scope,
        "ExecutionRole",
        assumed_by=iam.ServicePrincipal(
            "bedrock-agentcore.amazonaws.com",
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": runtime_arn},
            },
        ),
        description="agentjobs: the agent on AgentCore Runtime",
        max_session_duration=Duration.hours(8),
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


def grant_platform(role: iam.Role) -> None:
    """What AgentCore's execution-role docs list, as the L2 grants it to its own role."""
    stack = Stack.of(role)

    def log_groups(name: str) -> str:
        return stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    identity = stack.format_arn(service="bedrock-agentcore", resource="workload-identity-directory")
    statements = [
        iam.PolicyStatement(
            sid="LogGroupAccess",
            actions=["logs:DescribeLogStreams", "logs:CreateLogGroup"],
            resources=[log_groups("/aws/bedrock-agentcore/runtimes/*")],
        ),
        iam.PolicyStatement(
            sid="DescribeLogGroups",
            actions=["logs:DescribeLogGroups"],
            resources=[log_groups("*")],
        ),
        iam.PolicyStatement(
            sid="LogStreamAccess",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_groups("/aws/bedrock-agentcore/runtimes/*:log-stream:*")],
        ),
        iam.PolicyStatement(
            sid="XRayAccess",
            actions=[
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
            ],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="CloudWatchMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": "bedrock-agentcore"}},
        ),
        iam.PolicyStatement(
            sid="GetAgentAccessToken",
            actions=[
                "bedrock-agentcore:GetWorkloadAccessToken",
                "bedrock-agentcore:GetWorkloadAccessTokenForJWT",
                "bedrock-agentcore:GetWorkloadAccessTokenForUserId",
            ],
            resources=[f"{identity}/default", f"{identity}/default/workload-identity/*"],
        ),
    ]
    for statement in statements:
        role.add_to_principal_policy(statement)


def grant_job_data(role: iam.Role, job_data: JobData) -> None:
    """What the agent reads and writes of the job data: its records, results and inputs."""
    # The agent writes the RUNNING record with a conditional put and reads records back;
    # the poller owns every later change, so no update or delete here.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="JobRecords",
            actions=["dynamodb:PutItem", "dynamodb:GetItem"],
            resources=[job_data.table.table_arn],
        )
    )
    # A re-invoked session answers about its jobs from the table: its latest job is found
    # through the session index (a query on its key, never a scan).
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="SessionJobs",
            actions=["dynamodb:Query"],
            resources=[f"{job_data.table.table_arn}/index/{schema.SESSION_INDEX}"],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="WriteResults",
            actions=["s3:PutObject"],
            resources=[
                job_data.bucket.arn_for_objects(schema.outcome_key("*")),
                job_data.bucket.arn_for_objects(schema.result_key("*")),
            ],
        )
    )
    # A resumable job's input (stored at submit) and its checkpoints (the job's own,
    # and the attempt a retry records): written by the session running the job, read by
    # the fresh session that resumes it. Both keyed by the job id, in its folder.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="DurableJobState",
            actions=["s3:PutObject", "s3:GetObject"],
            resources=[
                job_data.bucket.arn_for_objects(schema.input_key("*")),
                job_data.bucket.arn_for_objects(schema.checkpoint_key("*")),
            ],
        )
    )
    # A resumable submit whose record could not be created removes the input it kept
    # first, so that a refused submit leaves nothing behind; no other object is deleted.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="RemoveUnrecordedInput",
            actions=["s3:DeleteObject"],
            resources=[job_data.bucket.arn_for_objects(schema.input_key("*"))],
        )
    )
    job_data.grant_append_events(role)
    # A re-invoked session whose job ended before the poller collected it answers from the
    # durable outcome. ListBucket (on the results prefix only) makes a missing outcome read
    # as NoSuchKey rather than AccessDenied, as for the poller: "no outcome" must be told
    # apart from "unreadable".
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ReadOutcomes",
            actions=["s3:GetObject"],
            resources=[job_data.bucket.arn_for_objects(schema.outcome_key("*"))],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ListOutcomes",
            actions=["s3:ListBucket"],
            resources=[job_data.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": f"{job_data.results_prefix}*"}},
        )
    )
    # A data_report job reads its caller's CSV from the inputs prefix and nothing else:
    # a caller cannot point a job at another job's results. It never lists, so no
    # ListBucket: a missing input reads as AccessDenied, which the agent reports as it
    # reports any unreadable input.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ReadInputs",
            actions=["s3:GetObject"],
            resources=[job_data.bucket.arn_for_objects(f"{job_data.input_prefix}*")],
        )
    )
    job_data.grant_key_use(role)


def grant_model(role: iam.Role, model_id: str, product_id: str | None) -> None:
    """Invoking `model_id` (through its inference profile, if it names one), and subscribing
    to its Marketplace product `product_id` on first use, if it has one."""
    profiles, models = model_resources(model_id)
    actions = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    if not profiles:
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="InvokeModel", actions=actions, resources=models)
        )
    else:
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
    if product_id is not None:
        # The first call of a Marketplace model in an account subscribes the account,
        # with the caller's rights (Bedrock user guide, "Request access to models"):
        # Subscribe for this one product only (aws-marketplace:ProductId, as the guide's
        # "Grant IAM permissions to request access ... with a product ID" shows), and
        # ViewSubscriptions, which has no resources or conditions to scope by.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SubscribeToTheModel",
                actions=["aws-marketplace:Subscribe"],
                resources=["*"],
                conditions={
                    "ForAnyValue:StringEquals": {"aws-marketplace:ProductId": [product_id]}
                },
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ViewModelSubscriptions",
                actions=["aws-marketplace:ViewSubscriptions"],
                resources=["*"],
            )
        )


def acknowledge_grants(
    role: iam.Role,
    job_data: JobData,
    *,
    model_id: str,
    pulls_image: bool,
    marketplace_product_id: str | None,
) -> None:
    """Acknowledge the wildcard resources of the grants above (and of an image pull), each
    with the reason it cannot be narrower."""
    bucket = attribute_ref(role, job_data.bucket.bucket_arn)
    logs_arn = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
    agentcore_arn = "arn:<AWS::Partition>:bedrock-agentcore:<AWS::Region>:<AWS::AccountId>"
    findings = {
        wildcard(f"{logs_arn}/aws/bedrock-agentcore/runtimes/*"): "AgentCore names the "
        "runtime's log group after the runtime id, known only once it exists; scoped to "
        "AgentCore's runtime log groups (AgentCore execution-role docs).",
        wildcard(f"{logs_arn}/aws/bedrock-agentcore/runtimes/*:log-stream:*"): "Log "
        "streams AgentCore creates per session in those groups.",
        wildcard(f"{logs_arn}*"): "logs:DescribeLogGroups supports no resource-level scoping.",
        wildcard("*"): "X-Ray trace and sampling actions support no resource-level "
        "scoping; cloudwatch:PutMetricData has none either and is limited to the "
        "bedrock-agentcore namespace by condition.",
        wildcard(f"{agentcore_arn}:workload-identity-directory/default/workload-identity/*"): (
            "The runtime's workload identity is created by AgentCore; token actions are "
            "scoped to the account's default directory."
        ),
        wildcard(f"{bucket}/{schema.outcome_key('*')}"): "A job's outcome is keyed by its "
        "job id: the agent writes outcome.json in each job's folder, nothing else.",
        wildcard(f"{bucket}/{schema.result_key('*')}"): "A large result is keyed by its "
        "job id: the agent writes result.json in each job's folder, nothing else.",
        wildcard(f"{bucket}/{schema.input_key('*')}"): "A resumable job's input is keyed "
        "by its job id: the agent stores it at submit and reads it back to resume the job.",
        wildcard(f"{bucket}/{schema.checkpoint_key('*')}"): "A resumable job's checkpoint "
        "is keyed by its job id: the agent writes it as the job runs and reads it to resume.",
        wildcard(f"{bucket}/{job_data.input_prefix}*"): "data_report jobs read the CSV inputs "
        "callers upload under the inputs prefix (s3:GetObject only), no other object.",
    }
    if pulls_image:
        findings[wildcard("*")] += (
            " ecr:GetAuthorizationToken has no resource-level scoping either (image pull)."
        )
    if marketplace_product_id is not None:
        findings[wildcard("*")] += (
            " aws-marketplace:Subscribe is limited to the model's product by condition; "
            "aws-marketplace:ViewSubscriptions has no resources or conditions."
        )
    for model in model_resources(model_id)[1]:
        if "*" in model:
            findings[wildcard(model.replace(Aws.PARTITION, "<AWS::Partition>"))] = (
                "A cross-region inference profile serves each request from the base model "
                "in any region of its group; allowed only through this profile (condition "
                "bedrock:InferenceProfileArn)."
            )
    acknowledge(default_policy(role), findings)
