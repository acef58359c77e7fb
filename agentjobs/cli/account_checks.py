"""Preflight checks of an account and region before the first deploy: read-only AWS calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from agentjobs.cli.checks import (
    NOT_FOUND,
    CheckResult,
    call_failed,
    error_code,
    missed,
    passed,
)
from agentjobs.model_ids import split_profile

BOOTSTRAP_STACK = "CDKToolkit"
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
"""Where the default synthesizer's CheckBootstrapVersion rule reads the version."""
REQUIRED_BOOTSTRAP_VERSION = 6
"""`requiresBootstrapStackVersion` of this app's stack as aws-cdk-lib synthesizes it; a test
pins it against a real synth."""
USABLE_STACK_STATES = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)

AGENTCORE_RUNTIME_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-5",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "us-gov-west-1",
)
"""Regions whose AgentCore Runtime runs microVMs, from the AgentCore developer guide's
"Supported AWS Regions" table. botocore's endpoint data has no region list for
bedrock-agentcore (its endpoint rules resolve a host name for any region), so this list
plus a control-plane call is how the doctor tells (and any region botocore ever lists)."""

TRANSACTION_SEARCH_FIX = (
    "turn on CloudWatch Transaction Search (account-wide): CloudWatch console > Application "
    "Signals > Transaction Search > Enable, or allow xray.amazonaws.com to write to "
    "CloudWatch Logs (`aws logs put-resource-policy`) and run "
    "`aws xray update-trace-segment-destination --destination CloudWatchLogs`; "
    "or deploy without -c tracing=true"
)


def check_credentials(sts: Any) -> tuple[CheckResult, str]:
    """STS GetCallerIdentity: (the result, the account id or '' when it failed)."""
    try:
        identity = sts.get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        return call_failed("credentials", exc, "sts:GetCallerIdentity"), ""
    account = str(identity.get("Account", ""))
    return passed("credentials", f"account {account} as {identity.get('Arn', '?')}"), account


# One early return per way a check can miss, each with its own fix.
def check_bootstrap(  # noqa: PLR0911
    cloudformation: Any, ssm: Any, account: str, region: str
) -> CheckResult:
    """The CDK bootstrap stack exists, is usable, and is at least the version the app needs."""
    name = "bootstrap"
    bootstrap_fix = (
        f"bootstrap aws://{account}/{region}: `make bootstrap` "
        f"(the pinned CDK CLI's `cdk bootstrap aws://{account}/{region}`)"
    )
    try:
        stacks = cloudformation.describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc.response.get("Error", {}).get("Message", "")):
            return missed(name, f"no {BOOTSTRAP_STACK} stack in {region}", bootstrap_fix)
        return call_failed(name, exc, "cloudformation:DescribeStacks")
    except BotoCoreError as exc:
        return call_failed(name, exc, "cloudformation:DescribeStacks")
    stack = stacks[0]
    status = str(stack.get("StackStatus", "?"))
    if status.endswith("_IN_PROGRESS"):
        return missed(
            name,
            f"{BOOTSTRAP_STACK} is {status}",
            "wait until it finishes (CloudFormation console), then run doctor again",
        )
    if status not in USABLE_STACK_STATES:
        return missed(
            name,
            f"{BOOTSTRAP_STACK} is {status}",
            f"read its events in the CloudFormation console and fix the cause; a stack in "
            f"ROLLBACK_COMPLETE must be deleted first; then {bootstrap_fix}",
        )
    found = _bootstrap_version(stack, ssm, bootstrap_fix)
    if isinstance(found, CheckResult):
        return found
    version, source = found
    if version < REQUIRED_BOOTSTRAP_VERSION:
        return missed(
            name,
            f"bootstrap version {version} ({source}); this app needs at least "
            f"{REQUIRED_BOOTSTRAP_VERSION}",
            f"upgrade it: {bootstrap_fix}",
        )
    return passed(
        name,
        f"{BOOTSTRAP_STACK} {status}, version {version} "
        f"(needs {REQUIRED_BOOTSTRAP_VERSION} or later)",
    )


def _bootstrap_version(stack: Any, ssm: Any, bootstrap_fix: str) -> tuple[int, str] | CheckResult:
    """(version, where it was read): the stack's output, else the SSM parameter."""
    name = "bootstrap"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    text = outputs.get("BootstrapVersion")
    source = f"output BootstrapVersion of {BOOTSTRAP_STACK}"
    if text is None:
        try:
            text = ssm.get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)["Parameter"]["Value"]
            source = f"SSM parameter {BOOTSTRAP_VERSION_PARAMETER}"
        except ClientError as exc:
            if error_code(exc) != "ParameterNotFound":
                return call_failed(name, exc, "ssm:GetParameter")
            return missed(
                name,
                f"{BOOTSTRAP_STACK} has no BootstrapVersion output and there is no SSM "
                f"parameter {BOOTSTRAP_VERSION_PARAMETER}",
                bootstrap_fix,
            )
        except BotoCoreError as exc:
            return call_failed(name, exc, "ssm:GetParameter")
    try:
        return int(str(text)), source
    except ValueError:
        return missed(name, f"{source} is {text!r}, not a version number", bootstrap_fix)


def check_agentcore(control: Any, region: str) -> CheckResult:
    """AgentCore Runtime is offered in `region`: the documented list and a ListAgentRuntimes
    call (the control plane answering, even with AccessDenied, proves the service is there)."""
    name = "agentcore"
    regions = agentcore_regions()
    listed = region in regions
    offered = ", ".join(regions)
    try:
        control.list_agent_runtimes(maxResults=1)
        answered = "the control plane answers"
    except ClientError as exc:
        code = error_code(exc)
        if code not in {"AccessDeniedException", "AccessDenied"}:
            return call_failed(name, exc, "bedrock-agentcore:ListAgentRuntimes")
        answered = "the control plane answers (this caller may not list runtimes)"
    except BotoCoreError as exc:
        if listed:
            return call_failed(name, exc, "bedrock-agentcore:ListAgentRuntimes")
        return missed(
            name,
            f"AgentCore Runtime is not offered in {region}; it is offered in: {offered}",
            "pass --region with one of those (and deploy there: AWS_REGION=REGION make deploy)",
        )
    if not listed:
        return passed(name, f"AgentCore Runtime in {region}: {answered} (a region new to doctor)")
    return passed(name, f"AgentCore Runtime in {region}: {answered}")


def agentcore_regions() -> tuple[str, ...]:
    """The documented AgentCore Runtime regions, plus any botocore's endpoint data lists."""
    session = boto3.session.Session()
    known = {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("bedrock-agentcore", partition)
    }
    return AGENTCORE_RUNTIME_REGIONS + tuple(sorted(known - set(AGENTCORE_RUNTIME_REGIONS)))


def check_model(bedrock: Any, model_id: str, region: str) -> CheckResult:  # noqa: PLR0911
    """The model (or inference profile) exists in `region`, is ACTIVE, and can be invoked."""
    name = "model"
    choose = (
        f"choose a current model offered in {region} (`aws bedrock list-inference-profiles "
        f"--region {region}`), deploy with -c modelId=ID and run doctor with --model-id ID"
    )
    prefix, base = split_profile(model_id)
    via = ""
    if prefix is not None:
        try:
            profile = bedrock.get_inference_profile(inferenceProfileIdentifier=model_id)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND | {"ValidationException"}:
                return missed(
                    name, f"inference profile {model_id} is not offered in {region}", choose
                )
            return call_failed(name, exc, "bedrock:GetInferenceProfile")
        except BotoCoreError as exc:
            return call_failed(name, exc, "bedrock:GetInferenceProfile")
        if profile.get("status") != "ACTIVE":
            return missed(
                name, f"inference profile {model_id} is {profile.get('status', '?')}", choose
            )
        via = f", through inference profile {profile.get('inferenceProfileName', model_id)}"
    try:
        details = bedrock.get_foundation_model(modelIdentifier=base)["modelDetails"]
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND | {"ValidationException"}:
            return missed(name, f"foundation model {base} is not offered in {region}", choose)
        return call_failed(name, exc, "bedrock:GetFoundationModel")
    except BotoCoreError as exc:
        return call_failed(name, exc, "bedrock:GetFoundationModel")
    lifecycle = details.get("modelLifecycle") or {}
    status = str(lifecycle.get("status", "?"))
    if status != "ACTIVE":
        dates = _lifecycle_dates(lifecycle)
        return missed(
            name,
            f"{base} is {status}{dates}: Bedrock keeps Legacy models from new customers",
            choose,
        )
    if prefix is None and "ON_DEMAND" not in details.get("inferenceTypesSupported", ["ON_DEMAND"]):
        return missed(
            name,
            f"{base} is invoked only through an inference profile, not by its model id",
            f"use a cross-region profile id such as us.{base} or global.{base} "
            f"(`aws bedrock list-inference-profiles --region {region}`)",
        )
    title = f"{details.get('providerName', '?')} {details.get('modelName', base)}"
    return passed(name, f"{model_id}: {title}, lifecycle ACTIVE{via}")


def check_model_access(bedrock: Any, model_id: str) -> CheckResult:  # noqa: PLR0911
    """This account may call the model: region, agreement, entitlement and authorization
    (GetFoundationModelAvailability)."""
    name = "model-access"
    _, base = split_profile(model_id)
    try:
        availability = bedrock.get_foundation_model_availability(modelId=base)
    except (ClientError, BotoCoreError) as exc:
        return call_failed(name, exc, "bedrock:GetFoundationModelAvailability")
    first_call = (
        "the first call of a third-party model subscribes the account through AWS "
        "Marketplace: invoke it once from the Bedrock console's model catalog (playground) "
        "as an identity with aws-marketplace:Subscribe, Unsubscribe and ViewSubscriptions, "
        "with a valid payment method on the account"
    )
    if availability.get("regionAvailability") == "NOT_AVAILABLE":
        return missed(name, f"{base} is not available in this region", "choose another region")
    agreement = availability.get("agreementAvailability") or {}
    agreement_status = agreement.get("status", "?")
    if agreement_status == "PENDING":
        return missed(
            name,
            f"the model agreement for {base} is PENDING",
            "wait a few minutes for the subscription to finish, then run doctor again",
        )
    if agreement_status != "AVAILABLE":
        error = f" ({agreement['errorMessage']})" if agreement.get("errorMessage") else ""
        return missed(
            name,
            f"no model agreement for {base}: {agreement_status}{error}",
            f"accept the model's offer: {first_call} "
            "(or `aws bedrock list-foundation-model-agreement-offers` and "
            "`create-foundation-model-agreement`)",
        )
    if availability.get("authorizationStatus") != "AUTHORIZED":
        return missed(
            name,
            f"the account is not authorized to use {base} "
            f"({availability.get('authorizationStatus', '?')})",
            "for Anthropic models submit the first-use (use case) form once per account or "
            "organization, in the Bedrock console's model catalog; check that no SCP or IAM "
            "policy denies bedrock:InvokeModel on it",
        )
    if availability.get("entitlementAvailability") != "AVAILABLE":
        return missed(name, f"the account has no Marketplace entitlement to {base} yet", first_call)
    return passed(name, f"{base}: agreement, entitlement and authorization in place")


def check_tracing(xray: Any) -> CheckResult:
    """X-Ray sends segments to CloudWatch Logs (Transaction Search), which `-c tracing=true`
    needs: without it, creating the runtime's trace delivery fails and the deploy rolls back."""
    name = "tracing"
    try:
        answer = xray.get_trace_segment_destination()
    except (ClientError, BotoCoreError) as exc:
        return call_failed(name, exc, "xray:GetTraceSegmentDestination")
    destination = answer.get("Destination", "?")
    status = answer.get("Status", "?")
    if destination != "CloudWatchLogs":
        return missed(
            name, f"X-Ray segments go to {destination}, not CloudWatchLogs", TRANSACTION_SEARCH_FIX
        )
    if status != "ACTIVE":
        return missed(
            name,
            f"Transaction Search is {status} (destination CloudWatchLogs)",
            "wait until it is ACTIVE (a few minutes), then run doctor again",
        )
    return passed(name, "Transaction Search ACTIVE: X-Ray segments go to CloudWatch Logs")


def _lifecycle_dates(lifecycle: dict[str, Any]) -> str:
    parts = []
    for key, label in (("legacyTime", "legacy since"), ("endOfLifeTime", "end of life")):
        value = lifecycle.get(key)
        if isinstance(value, datetime):
            parts.append(f"{label} {value.date().isoformat()}")
    return f" ({', '.join(parts)})" if parts else ""
