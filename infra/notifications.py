"""Notifications: the jobs topic (one message per finished job) and the operators' alarm topic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

CLOUDWATCH = "cloudwatch.amazonaws.com"
PUBLISH_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
"""What a publisher to a KMS-encrypted topic calls on its key (a data key per message batch,
and Decrypt to reuse it). Nothing else of the key is needed to publish."""


@dataclass(frozen=True)
class NotificationsProps:
    """Who hears about finished jobs and about alarms."""

    emails: tuple[str, ...]


class Notifications(Construct):
    """Two KMS-encrypted, TLS-only topics with the same email subscribers.

    Alarms get their own topic because machine subscribers of the jobs topic parse every
    message as the job notification contract; an alarm there would break them.
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
        self.jobs_topic = self._topic("Jobs", "agentjobs: finished jobs", props.emails)
        self.alarm_topic = self._topic("Alarms", "agentjobs: operational alarms", props.emails)

    def allow_alarms(self, alarm_arns: Sequence[str]) -> None:
        """Let CloudWatch publish these alarms' state changes to the alarm topic.

        `enforce_ssl` gives the topic a policy of its own, which replaces SNS's default one:
        without this Allow every alarm action fails with "not authorized to perform
        SNS:Publish" (AWS re:Post, "Why didn't I receive an SNS notification for my
        CloudWatch alarm trigger?"). The topic's key must let CloudWatch generate and use
        data keys too, or the publish fails on KMS (AWS re:Post, "How do I configure a
        CloudWatch alarm with an encrypted SNS topic?"). Both are scoped to this account and
        to exactly these alarms (aws:SourceAccount, aws:SourceArn), against the confused
        deputy. The ARNs are built from the alarms' names, not read from the alarms, since
        the key the topic depends on cannot depend on the alarms that depend on the topic.
        """
        if not alarm_arns:
            raise ValueError("allow_alarms needs at least one alarm ARN")
        conditions = {
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": list(alarm_arns)},
        }
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions=conditions,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToUseTheTopicKey",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=list(PUBLISH_KEY_ACTIONS),
                resources=["*"],  # in a key policy, "*" means this key
                conditions=conditions,
            )
        )

    def grant_publish_jobs(self, grantee: iam.IGrantable) -> None:
        """Publish to the jobs topic, with only the key actions publishing needs.

        Replaces `Topic.grant_publish`, whose key grant is `kms:GenerateDataKey*`.
        """
        principal = grantee.grant_principal
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishJobNotifications",
                actions=["sns:Publish"],
                resources=[self.jobs_topic.topic_arn],
            )
        )
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="UseNotificationKey",
                actions=list(PUBLISH_KEY_ACTIONS),
                resources=[self.key.key_arn],
            )
        )

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
