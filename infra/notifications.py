"""Notifications: the jobs topic (one message per finished job) and the operators' alarm topic."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


@dataclass(frozen=True)
class NotificationsProps:
    """Who hears about finished jobs and about alarms."""

    emails: tuple[str, ...]


class Notifications(Construct):
    """Two KMS-encrypted, TLS-only topics with the same email subscribers.

    Alarms get their own topic because machine subscribers of the jobs topic parse every
    message as the job notification contract (DESIGN.md); an alarm there would break them.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: NotificationsProps) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="agentjobs: job notifications and alarms",
            enable_key_rotation=True,
            # Only in-flight messages use it; nothing stored depends on it after deletion.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # CloudWatch publishes alarm state changes to the alarm topic, so it must be able to
        # encrypt with the topic's key (AWS docs: alarms on encrypted topics).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" means this key
            )
        )
        self.jobs_topic = self._topic("Jobs", "agentjobs: finished jobs", props.emails)
        self.alarm_topic = self._topic("Alarms", "agentjobs: operational alarms", props.emails)

    def _topic(self, construct_id: str, display_name: str, emails: tuple[str, ...]) -> sns.Topic:
        topic = sns.Topic(
            self,
            construct_id,
            display_name=display_name,
            master_key=self.key,
            enforce_ssl=True,
        )
        for email in emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic
