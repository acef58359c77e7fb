"""Template hygiene: cdk-nag acknowledgments (one finding, one construct, one reason each)
and the DependsOn entries cfn-lint flags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, findings: Mapping[str, str]) -> None:
    """Acknowledge cdk-nag findings (`AwsSolutions-...` ids) on `scope`, one reason each."""
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=finding, reason=reason) for finding, reason in findings.items())
    )


def default_policy(role: IConstruct) -> IConstruct:
    """The DefaultPolicy CDK's grants write into: where IAM5 findings on a role are raised."""
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is None:
        raise LookupError(f"{role.node.path} has no DefaultPolicy to acknowledge findings on")
    return policy


def wildcard(resource: str) -> str:
    """The IAM5 finding id of a wildcard resource, as cdk-nag spells it."""
    return f"AwsSolutions-IAM5[Resource::{resource}]"


def attribute_ref(scope: IConstruct, token: str) -> str:
    """How cdk-nag renders a `Fn::GetAtt` token in a finding: `<LogicalId.Attribute>`."""
    resolved = Stack.of(scope).resolve(token)
    logical_id, attribute = resolved["Fn::GetAtt"]
    return f"<{logical_id}.{attribute}>"


def drop_redundant_depends_on(resource: CfnResource, keep: Sequence[CfnResource] = ()) -> None:
    """Render `resource`'s DependsOn as `keep` only (or not at all).

    CDK adds DependsOn entries that a Ref or GetAtt already implies; cfn-lint flags those
    (W3005). Only entries without such a reference belong in `keep`.
    """
    if keep:
        stack = Stack.of(resource)
        resource.add_override("DependsOn", [stack.get_logical_id(r) for r in keep])
    else:
        resource.add_deletion_override("DependsOn")
