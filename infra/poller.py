"""The poller: a Lambda run by EventBridge Scheduler that reconciles every job in flight."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Aws, CfnResource, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from agentjobs import metrics, schema
from infra.bundling import (
    PROJECT_ROOT,
    PythonBundle,
    SourceTree,
    bundling_options,
    requirements_from_pyproject,
)
from infra.completion import CompletionSignals
from infra.job_data import JobData
from infra.nag import (
    acknowledge,
    attribute_ref,
    default_policy,
    drop_redundant_depends_on,
    wildcard,
)
from infra.notifications import Notifications
from infra.runtime import AgentRuntime

POLLER_RUNTIME = lambda_.Runtime.PYTHON_3_14
POLLER_PYTHON_VERSION = POLLER_RUNTIME.name.removeprefix("python")
"""'3.14': pip fetches wheels built for the Lambda runtime's interpreter."""
HANDLER = "handler.handler"
METRICS_NAMESPACE = metrics.NAMESPACE
SERVICE_NAME = metrics.SERVICE
ENDPOINT_QUALIFIER = "DEFAULT"
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
TIMEOUT_MARGIN = Duration.seconds(5)
SCHEDULER_RETRIES = 2
SIGNAL_BATCH_SIZE = 10
SIGNAL_MAX_CONCURRENCY = 5
"""Pollers the fast path may run at once: a burst of finishing jobs is reconciled in
batches of ten, without crowding out the account's other Lambda functions."""


@dataclass(frozen=True)
class PollerProps:
    """What the poller reads, writes, invokes and how often."""

    job_data: JobData
    notifications: Notifications
    agent: AgentRuntime
    rate: Duration
    idle_timeout: Duration
    project_root: Path = PROJECT_ROOT
    completion: CompletionSignals | None = None
    """The fast completion path's queue, consumed besides the schedule; None: schedule only."""
    email_result_preview: bool = False
    """Whether the email quotes the start of an inline result (POLLER_EMAIL_RESULT_PREVIEW)."""


def poller_timeout(rate: Duration) -> Duration:
    """The Lambda's timeout: a tick ends before the next one starts."""
    return Duration.seconds(rate.to_seconds() - TIMEOUT_MARGIN.to_seconds())


def poller_bundle(project_root: Path) -> PythonBundle:
    """The poller's zip: poller_lambda at the root, the shared package, the poller's deps.

    boto3 is bundled at the project's pin rather than taken from the Lambda runtime, whose
    copy may predate the bedrock-agentcore data-plane API.
    """
    return PythonBundle(
        trees=(
            SourceTree(project_root / "poller_lambda"),
            # The poller imports neither the CLI nor the agent library (agentjobs.agent).
            SourceTree(project_root / "agentjobs", "agentjobs", exclude=("cli", "agent")),
        ),
        requirements=requirements_from_pyproject(project_root / "pyproject.toml", ["poller"]),
        python_version=POLLER_PYTHON_VERSION,
    )


class Poller(Construct):
    """The poller Lambda, its schedule with retries and a dead-letter queue, and its rights."""

    def __init__(self, scope: Construct, construct_id: str, *, props: PollerProps) -> None:
        super().__init__(scope, construct_id)
        root = props.project_root
        self.log_group = logs.LogGroup(
            self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        )
        # An explicit role instead of the default one: the default attaches the managed
        # AWSLambdaBasicExecutionRole, which may write to every log group in the account.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="agentjobs poller",
        )
        self.log_group.grant_write(self.role)
        # A tick ends before the next one starts, so scheduled ticks never overlap; the
        # poller's per-job leases cover a Scheduler retry running beside a fresh tick. No
        # reserved concurrency: reserving even 1 fails to deploy in accounts at the default
        # minimum of 10 unreserved executions.
        self.timeout = poller_timeout(props.rate)
        # Warned about ("how close to the idle timeout") at two thirds of the idle window.
        overdue_after_s = props.idle_timeout.to_seconds() * 2 // 3
        self.function = lambda_.Function(
            self,
            "Function",
            description="agentjobs: reconcile running jobs with their AgentCore sessions",
            runtime=POLLER_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(
                str(root / "poller_lambda"),
                **bundling_options(poller_bundle(root), root / ".build"),
            ),
            role=self.role,
            timeout=self.timeout,
            memory_size=512,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={
                "JOBS_TABLE": props.job_data.table.table_name,
                "EVENTS_TABLE": props.job_data.events_table.table_name,
                "RESULTS_BUCKET": props.job_data.bucket.bucket_name,
                "TOPIC_ARN": props.notifications.jobs_topic.topic_arn,
                "AGENT_RUNTIME_ARN": props.agent.arn,
                "AGENT_RUNTIME_QUALIFIER": ENDPOINT_QUALIFIER,
                "POLLER_OVERDUE_AFTER_S": str(int(overdue_after_s)),
                "POLLER_EMAIL_RESULT_PREVIEW": "1" if props.email_result_preview else "0",
                # When a resumable job is handed to a fresh session: before the runtime's
                # max lifetime ends the old one.
                "POLLER_SESSION_MAX_LIFETIME_S": str(int(props.agent.max_lifetime.to_seconds())),
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
        )
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        # Our own role for the schedule, so its generated invoke grant is found (and
        # acknowledged) here rather than on a stack-level role with a hashed name.
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="agentjobs: EventBridge Scheduler runs the poller",
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description="agentjobs: run the poller",
            schedule=scheduler.ScheduleExpression.rate(props.rate),
            target=targets.LambdaInvoke(
                self.function,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=SCHEDULER_RETRIES,
                # A tick older than one period is superseded by the next one.
                max_event_age=props.rate,
                role=self.schedule_role,
            ),
        )
        if props.completion is not None:
            self._consume(props.completion)
        self._grant(props)
        self._acknowledge(props)
        cfn_function = self.function.node.default_child
        cfn_policy = default_policy(self.role).node.default_child
        assert isinstance(cfn_function, CfnResource)
        assert isinstance(cfn_policy, CfnResource)
        # The role is referenced by its ARN already; its policy must exist before a tick runs.
        drop_redundant_depends_on(cfn_function, keep=[cfn_policy])

    def _consume(self, completion: CompletionSignals) -> None:
        # No batching window: a signal is worth its latency. Batches are reconciled
        # concurrently and answered per message (ReportBatchItemFailures), and the event
        # source grants the poller receive/delete on this queue only.
        self.function.add_event_source(
            event_sources.SqsEventSource(
                completion.queue,
                batch_size=SIGNAL_BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=SIGNAL_MAX_CONCURRENCY,
            )
        )

    def _grant(self, props: PollerProps) -> None:
        role, job_data = self.role, props.job_data
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="JobRecords",
                # Records are created by the agent; the poller reads them and moves them on
                # with conditional updates (leases, transitions), never a blind put.
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[job_data.table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="JobsInFlight",
                actions=["dynamodb:Query"],
                resources=[job_data.attention_index_arn()],
            )
        )
        outcomes = job_data.bucket.arn_for_objects(schema.outcome_key("*"))
        results = job_data.bucket.arn_for_objects(schema.result_key("*"))
        # Reads the agent's outcomes, and checks (HEAD, which S3 authorizes as GetObject) or
        # stores large results.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadOutcomes", actions=["s3:GetObject"], resources=[outcomes, results]
            )
        )
        # The attempt a resumable job's session recorded with its last checkpoint decides
        # whether attempts are left when the session is lost.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadCheckpoints",
                actions=["s3:GetObject"],
                resources=[job_data.bucket.arn_for_objects(schema.checkpoint_key("*"))],
            )
        )
        job_data.grant_append_events(role)
        # An agent answer too large for the record is stored by the poller instead; it never
        # writes an outcome, so it cannot overwrite what the agent stored.
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="WriteResults", actions=["s3:PutObject"], resources=[results])
        )
        # Without ListBucket a missing outcome reads as 403 AccessDenied instead of
        # NoSuchKey, and "no stored outcome" (a LOST job) could not be told from an error.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListOutcomes",
                actions=["s3:ListBucket"],
                resources=[job_data.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": f"{job_data.results_prefix}*"}},
            )
        )
        job_data.grant_key_use(role)
        props.notifications.grant_publish_jobs(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PollAndStopSessions",
                actions=[
                    "bedrock-agentcore:InvokeAgentRuntime",
                    "bedrock-agentcore:StopRuntimeSession",
                ],
                resources=[props.agent.arn, props.agent.default_endpoint_arn],
            )
        )

    def _acknowledge(self, props: PollerProps) -> None:
        bucket = attribute_ref(self, props.job_data.bucket.bucket_arn)
        acknowledge(
            default_policy(self.role),
            {
                wildcard("*"): "Active tracing: xray:PutTraceSegments and "
                "xray:PutTelemetryRecords support no resource-level scoping.",
                wildcard(f"{bucket}/{schema.outcome_key('*')}"): "The poller reads each job's "
                "outcome, keyed by job id; nothing else in the bucket.",
                wildcard(f"{bucket}/{schema.result_key('*')}"): "The poller checks and stores "
                "each job's large result, keyed by job id; nothing else in the bucket.",
                wildcard(f"{bucket}/{schema.checkpoint_key('*')}"): "The poller reads the "
                "attempt each resumable job's checkpoint records, keyed by job id.",
            },
        )
        function = attribute_ref(self, self.function.function_arn)
        acknowledge(
            default_policy(self.schedule_role),
            {
                wildcard(f"{function}:*"): "Generated by the Scheduler Lambda target: invoke "
                "this one function, and its versions and aliases.",
            },
        )
        acknowledge(
            self.dead_letter_queue,
            {
                "AwsSolutions-SQS3": "This queue is itself the dead-letter queue of the "
                "poller's schedule; a queue behind it would hold nothing new.",
            },
        )
