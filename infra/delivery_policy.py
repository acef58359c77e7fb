"""A fix of the L2 Runtime's logs delivery policy, whose log-stream ARN matches no stream."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Aws, CfnResource, Stack
from aws_cdk import aws_logs as logs

DELIVERY_POLICY_ID = "CdkLogGroupLogsDeliveryPolicy"
"""The stack-level logs resource policy the L2 Runtime adds when it manages delivery policies."""


def fix_delivery_policy(log_group: logs.LogGroup) -> None:
    """Name `log_group`'s log streams in the form that matches, in the L2's delivery policy.

    The L2 appends `:log-stream:*` to the log group's `Arn` attribute, which already
    ends in `:*` (aws/aws-cdk#18253): `...:log-group:NAME:*:log-stream:*` matches no
    stream. The statement is rebuilt from the group's name instead.

    Raises LookupError when the stack holds no such policy (the L2 changed its ways).
    """
    stack = Stack.of(log_group)
    policy = stack.node.try_find_child(DELIVERY_POLICY_ID)
    if not isinstance(policy, logs.ResourcePolicy):
        raise LookupError(f"the L2 Runtime no longer adds {DELIVERY_POLICY_ID}")
    streams = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{log_group.log_group_name}:log-stream:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    document: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "delivery.logs.amazonaws.com"},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": streams,
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": stack.format_arn(service="logs", resource="*")},
                },
            }
        ],
    }
    cfn_policy = policy.node.default_child
    assert isinstance(cfn_policy, CfnResource)
    cfn_policy.add_property_override("PolicyDocument", stack.to_json_string(document))
