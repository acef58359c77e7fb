"""The notification topics in the template: encryption, TLS and subscriptions."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infra.conftest import EMAILS, Synth
from tests.infra.template import (
    ref,
)


def test_topics_are_kms_encrypted_and_tls_only(default_synth: Synth, ids: dict[str, str]) -> None:
    template = default_synth.template
    for topic in ("jobs_topic", "alarm_topic"):
        props = default_synth.raw["Resources"][ids[topic]]["Properties"]
        assert "KmsMasterKeyId" in props
        template.has_resource_properties(
            "AWS::SNS::TopicPolicy",
            {
                "Topics": [ref(ids[topic])],
                "PolicyDocument": Match.object_like(
                    {
                        "Statement": Match.array_with(
                            [
                                Match.object_like(
                                    {
                                        "Effect": "Deny",
                                        "Action": "sns:Publish",
                                        "Principal": "*",
                                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                    }
                                )
                            ]
                        )
                    }
                ),
            },
        )


def test_every_notification_email_is_subscribed_to_both_topics(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    subscriptions = default_synth.template.find_resources("AWS::SNS::Subscription")
    found = {
        (s["Properties"]["TopicArn"]["Ref"], s["Properties"]["Endpoint"])
        for s in subscriptions.values()
        if s["Properties"]["Protocol"] == "email"
    }
    assert found == {
        (ids[topic], email) for topic in ("jobs_topic", "alarm_topic") for email in EMAILS
    }
