"""Checks of a deployed agentjobs stack: its outputs, runtime, subscriptions and alarm topic."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentjobs.cli.account_checks import USABLE_STACK_STATES
from agentjobs.cli.checks import CheckResult, ClientFactory, call_failed, missed, passed
from agentjobs.cli.discovery import STACK_OUTPUTS

ALARM_TOPIC_OUTPUT = "AlarmTopicArn"
REQUIRED_OUTPUTS = (*STACK_OUTPUTS.values(), ALARM_TOPIC_OUTPUT)
CLOUDWATCH = "cloudwatch.amazonaws.com"
PENDING = "PendingConfirmation"
REDEPLOY = "deploy this version of the stack (`make deploy`)"


def check_stack(client: ClientFactory, stack: str) -> list[CheckResult]:
    """Every check of a deployed stack; only the first when the stack cannot be read."""
    found = _read_stack(client("cloudformation"), stack)
    if isinstance(found, CheckResult):
        return [found]
    outputs = found
    sns = client("sns")
    return [
        passed("stack", f"{stack}: outputs {', '.join(REQUIRED_OUTPUTS)}"),
        check_runtime(client("bedrock-agentcore-control"), outputs["AgentRuntimeArn"]),
        check_subscriptions(sns, outputs[ALARM_TOPIC_OUTPUT], alarms=True),
        check_subscriptions(sns, outputs["TopicArn"], alarms=False),
        check_alarm_topic(sns, client("kms"), outputs[ALARM_TOPIC_OUTPUT]),
    ]


def _read_stack(cloudformation: Any, stack: str) -> dict[str, str] | CheckResult:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc.response.get("Error", {}).get("Message", "")):
            return missed(
                "stack",
                f"no stack {stack} in {cloudformation.meta.region_name}",
                "check --stack and --region, or deploy it with `make deploy`",
            )
        return call_failed("stack", exc, "cloudformation:DescribeStacks")
    except BotoCoreError as exc:
        return call_failed("stack", exc, "cloudformation:DescribeStacks")
    status = str(stacks[0].get("StackStatus", "?"))
    if status not in USABLE_STACK_STATES:
        return missed(
            "stack",
            f"{stack} is {status}",
            "wait for it to finish, or read its events in the CloudFormation console and "
            "deploy again with `make deploy`",
        )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    absent = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if absent:
        return missed(
            "stack",
            f"{stack} has no output(s) {', '.join(absent)}: an older or another stack",
            REDEPLOY,
        )
    return outputs


def check_runtime(control: Any, runtime_arn: str) -> CheckResult:
    """The agent runtime the stack names exists and is READY."""
    name = "runtime"
    _, marker, runtime_id = runtime_arn.rpartition(":runtime/")
    if not marker or not runtime_id:
        return missed(name, f"{runtime_arn!r} is not an AgentCore runtime ARN", REDEPLOY)
    try:
        runtime = control.get_agent_runtime(agentRuntimeId=runtime_id)
    except (ClientError, BotoCoreError) as exc:
        return call_failed(name, exc, "bedrock-agentcore:GetAgentRuntime")
    status = str(runtime.get("status", "?"))
    version = runtime.get("agentRuntimeVersion", "?")
    if status != "READY":
        reason = f": {runtime['failureReason']}" if runtime.get("failureReason") else ""
        fix = (
            "wait until it is READY, then run doctor again"
            if status in {"CREATING", "UPDATING"}
            else "read the reason, fix it, and deploy again with `make deploy`"
        )
        return missed(name, f"runtime {runtime_id} (version {version}) is {status}{reason}", fix)
    return passed(name, f"runtime {runtime_id} version {version} READY")


def check_subscriptions(sns: Any, topic_arn: str, *, alarms: bool) -> CheckResult:
    """Nobody's subscription waits for confirmation; the alarm topic reaches somebody."""
    name = "alarm-subscriptions" if alarms else "job-subscriptions"
    topic = topic_arn.rsplit(":", 1)[-1]
    try:
        subscriptions = _subscriptions(sns, topic_arn)
    except (ClientError, BotoCoreError) as exc:
        return call_failed(name, exc, "sns:ListSubscriptionsByTopic")
    pending = [s.get("Endpoint", "?") for s in subscriptions if s["SubscriptionArn"] == PENDING]
    confirmed = [s for s in subscriptions if s["SubscriptionArn"].startswith("arn:")]
    if pending:
        return missed(
            name,
            f"{len(pending)} subscription(s) to {topic} wait for confirmation: "
            f"{', '.join(pending)}",
            "open the mail 'AWS Notification - Subscription Confirmation' each address got "
            "and choose Confirm subscription; to send it again: `aws sns subscribe "
            f"--topic-arn {topic_arn} --protocol email --notification-endpoint ADDRESS`",
        )
    if alarms and not confirmed:
        return missed(
            name,
            f"nobody is subscribed to the alarm topic {topic}: alarms reach no one",
            "deploy with `make deploy EMAIL=you@example.com` (and confirm the mail), or "
            f"subscribe: `aws sns subscribe --topic-arn {topic_arn} --protocol email "
            "--notification-endpoint ADDRESS`",
        )
    protocols = sorted({str(s.get("Protocol", "?")) for s in confirmed})
    kinds = f" ({', '.join(protocols)})" if protocols else ""
    return passed(name, f"{topic}: {len(confirmed)} confirmed subscription(s){kinds}, none pending")


def check_alarm_topic(sns: Any, kms: Any, topic_arn: str) -> CheckResult:  # noqa: PLR0911
    """CloudWatch may publish to the alarm topic, and use its KMS key when it has one."""
    name = "alarm-topic"
    try:
        attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    except (ClientError, BotoCoreError) as exc:
        return call_failed(name, exc, "sns:GetTopicAttributes")
    policy = _json_object(attributes.get("Policy", ""))
    if not allows(policy, CLOUDWATCH, ("sns:Publish",)):
        return missed(
            name,
            f"the policy of {topic_arn} does not let {CLOUDWATCH} publish: alarms fail with "
            "'not authorized to perform SNS:Publish'",
            REDEPLOY + ": it allows CloudWatch beside the TLS-only Deny",
        )
    key_id = attributes.get("KmsMasterKeyId")
    if not key_id:
        return passed(name, f"{CLOUDWATCH} may publish to {topic_arn} (not encrypted)")
    try:
        key = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        if key.get("KeyManager") == "AWS":
            return missed(
                name,
                f"{topic_arn} is encrypted with the AWS managed key {key_id}, whose policy "
                "CloudWatch may not use",
                REDEPLOY + ": its alarm topic uses a customer managed key",
            )
        key_policy = _json_object(
            kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
        )
    except (ClientError, BotoCoreError) as exc:
        return call_failed(name, exc, "kms:DescribeKey and kms:GetKeyPolicy")
    if not allows(key_policy, CLOUDWATCH, ("kms:Decrypt", "kms:GenerateDataKey")):
        return missed(
            name,
            f"the key policy of {key['KeyId']} does not let {CLOUDWATCH} use kms:Decrypt and "
            "kms:GenerateDataKey*: encrypted alarm messages cannot be sent",
            REDEPLOY,
        )
    return passed(name, f"{CLOUDWATCH} may publish to {topic_arn} and use its key")


def allows(policy: dict[str, Any], service: str, actions: tuple[str, ...]) -> bool:
    """Whether `policy` has an Allow for the service principal covering every action, and
    no unconditional Deny of any of them."""
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    allowed: set[str] = set()
    for statement in statements:
        if not isinstance(statement, dict) or not _names_service(statement, service):
            continue
        covered = {a for a in actions if _covers(statement.get("Action", []), a)}
        if statement.get("Effect") == "Deny" and covered and not statement.get("Condition"):
            return False
        if statement.get("Effect") == "Allow":
            allowed |= covered
    return allowed == set(actions)


def _names_service(statement: dict[str, Any], service: str) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return statement.get("Effect") == "Deny"
    if not isinstance(principal, dict):
        return False
    if principal.get("AWS") == "*" and statement.get("Effect") == "Deny":
        return True
    services = principal.get("Service", [])
    return service in ([services] if isinstance(services, str) else services)


def _covers(actions: Any, wanted: str) -> bool:
    listed = [actions] if isinstance(actions, str) else list(actions)
    service, _, _ = wanted.partition(":")
    for action in (str(a).lower() for a in listed):
        if action in {"*", f"{service}:*"}:
            return True
        if action.endswith("*") and wanted.lower().startswith(action[:-1]):
            return True
        if wanted.lower() == action:
            return True
    return False


def _subscriptions(sns: Any, topic_arn: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sns.list_subscriptions_by_topic(
            TopicArn=topic_arn, **({"NextToken": token} if token else {})
        )
        found.extend(page.get("Subscriptions", []))
        token = page.get("NextToken")
        if not token:
            return found


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
