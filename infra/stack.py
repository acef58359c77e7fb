"""The AgentJobs stack: composes the job data, runtime, poller, notifications and monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from constructs import Construct

from infra.bundling import PROJECT_ROOT
from infra.completion import CompletionSignals, CompletionSignalsProps
from infra.job_data import JobData, JobDataProps
from infra.monitoring import Monitoring, MonitoringProps
from infra.notifications import Notifications, NotificationsProps
from infra.poller import Poller, PollerProps, poller_timeout
from infra.runtime import AgentRuntime, AgentRuntimeProps
from infra.settings import DeploySettings


class AgentJobsStack(Stack):
    """Everything `cdk deploy` puts in the account; outputs are read by the agentjobs CLI."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        project_root: Path = PROJECT_ROOT,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="agentjobs: long-running agent jobs on Amazon Bedrock AgentCore Runtime",
            **kwargs,
        )
        job_data = JobData(
            self,
            "JobStore",
            props=JobDataProps(result_retention_days=settings.result_retention_days),
        )
        notifications = Notifications(
            self, "Notifications", props=NotificationsProps(emails=settings.notification_emails)
        )
        idle_timeout = Duration.seconds(settings.idle_timeout_s)
        rate = Duration.minutes(settings.poller_rate_minutes)
        completion = CompletionSignals(
            self,
            "CompletionSignals",
            props=CompletionSignalsProps(consumer_timeout=poller_timeout(rate)),
        )
        agent = AgentRuntime(
            self,
            "Agent",
            props=AgentRuntimeProps(
                job_data=job_data,
                model_id=settings.model_id,
                idle_timeout=idle_timeout,
                max_lifetime=Duration.seconds(settings.max_lifetime_s),
                artifact=settings.agent_artifact,
                result_retention_days=settings.result_retention_days,
                project_root=project_root,
                completion=completion,
                tracing=settings.tracing,
                marketplace_product_id=settings.marketplace_product_id,
                agent_dir=settings.agent_dir,
                entrypoint=settings.agent_entrypoint,
            ),
        )
        poller = Poller(
            self,
            "Poller",
            props=PollerProps(
                job_data=job_data,
                notifications=notifications,
                agent=agent,
                rate=rate,
                idle_timeout=idle_timeout,
                project_root=project_root,
                completion=completion,
                email_result_preview=settings.email_result_preview,
            ),
        )
        monitoring = Monitoring(
            self,
            "Monitoring",
            props=MonitoringProps(
                poller=poller,
                alarm_topic=notifications.alarm_topic,
                completion_dead_letters=completion.dead_letter_queue,
            ),
        )
        notifications.allow_alarms(monitoring.alarm_arns)

        outputs = {
            "AgentRuntimeArn": (agent.arn, "InvokeAgentRuntime target"),
            "JobsTableName": (job_data.table.table_name, "DynamoDB table of job records"),
            "EventsTableName": (
                job_data.events_table.table_name,
                "DynamoDB table of job histories",
            ),
            "ResultsBucketName": (job_data.bucket.bucket_name, "S3 bucket of large results"),
            "TopicArn": (notifications.jobs_topic.topic_arn, "SNS topic of finished jobs"),
            "AlarmTopicArn": (notifications.alarm_topic.topic_arn, "SNS topic of alarms"),
            "DashboardUrl": (monitoring.dashboard_url, "CloudWatch dashboard of the job flow"),
        }
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)
