"""Reading the synthesized template: intrinsic functions, a role's policy statements."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth


def getatt(logical_id: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def joined(*parts: Any) -> dict[str, Any]:
    return {"Fn::Join": ["", list(parts)]}


def statements(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to one role."""
    found: list[dict[str, Any]] = []
    for policy in synth.template.find_resources("AWS::IAM::Policy").values():
        if ref(role_logical_id) in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def by_sid(synth: Synth, role_logical_id: str, sid: str) -> dict[str, Any]:
    matches = [s for s in statements(synth, role_logical_id) if s.get("Sid") == sid]
    assert len(matches) == 1, f"{sid}: {matches}"
    return matches[0]


def runtime_role(synth: Synth, runtime_id: str) -> str:
    role_arn = synth.raw["Resources"][runtime_id]["Properties"]["RoleArn"]
    return str(role_arn["Fn::GetAtt"][0])


SIGNAL_CONSUME_ACTIONS = [
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
]


def sqs_statements(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statements(synth, role_logical_id)
        if any(a.startswith("sqs:") for a in actions_of(s))
    ]
