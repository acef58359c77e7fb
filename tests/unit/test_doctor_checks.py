"""The doctor's checks of services moto lacks (Bedrock, X-Ray) and of answers moto cannot give
(pending subscriptions, key policies), against botocore's Stubber: real clients, no network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from agentjobs.cli.account_checks import (
    check_model,
    check_model_access,
    check_tracing,
)
from agentjobs.cli.checks import missed, passed
from agentjobs.cli.doctor import parse_region, report_lines, resolve_options
from agentjobs.cli.errors import CliError, ExitCode
from agentjobs.cli.stack_checks import (
    allows,
    check_alarm_topic,
    check_runtime,
    check_subscriptions,
)
from agentjobs.model_ids import DEFAULT_MODEL_ID, split_profile

REGION = "us-east-1"
PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
BASE = "anthropic.claude-sonnet-4-5-20250929-v1:0"
TOPIC = "arn:aws:sns:us-east-1:123456789012:AgentJobs-Alarms"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


def _client(service: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return session.client(service)


@contextmanager
def stubbed(service: str) -> Iterator[tuple[Any, Stubber]]:
    client = _client(service)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _profile(status: str = "ACTIVE") -> dict[str, Any]:
    return {
        "inferenceProfileName": "US Claude Sonnet 4.5",
        "inferenceProfileArn": f"arn:aws:bedrock:{REGION}:123456789012:inference-profile/{PROFILE}",
        "inferenceProfileId": PROFILE,
        "models": [{"modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{BASE}"}],
        "status": status,
        "type": "SYSTEM_DEFINED",
    }


def _model(
    status: str = "ACTIVE", inference: tuple[str, ...] = ("INFERENCE_PROFILE",), **dates: datetime
) -> dict[str, Any]:
    return {
        "modelDetails": {
            "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{BASE}",
            "modelId": BASE,
            "modelName": "Claude Sonnet 4.5",
            "providerName": "Anthropic",
            "inferenceTypesSupported": list(inference),
            "modelLifecycle": {"status": status, **dates},
        }
    }


def _availability(
    agreement: str = "AVAILABLE",
    authorization: str = "AUTHORIZED",
    entitlement: str = "AVAILABLE",
    region: str = "AVAILABLE",
) -> dict[str, Any]:
    return {
        "modelId": BASE,
        "agreementAvailability": {"status": agreement},
        "authorizationStatus": authorization,
        "entitlementAvailability": entitlement,
        "regionAvailability": region,
    }


# The model: inference profile, lifecycle, how it can be invoked.


def test_an_active_profile_of_an_active_model_passes() -> None:
    with stubbed("bedrock") as (bedrock, stub):
        stub.add_response(
            "get_inference_profile", _profile(), {"inferenceProfileIdentifier": PROFILE}
        )
        stub.add_response("get_foundation_model", _model(), {"modelIdentifier": BASE})
        result = check_model(bedrock, PROFILE, REGION)
    assert result.ok, result
    assert "ACTIVE" in result.detail
    assert "US Claude Sonnet 4.5" in result.detail


def test_a_legacy_model_is_named_with_its_dates_and_how_to_choose_another() -> None:
    legacy = datetime(2026, 6, 1, tzinfo=UTC)
    end = datetime(2027, 1, 15, tzinfo=UTC)
    with stubbed("bedrock") as (bedrock, stub):
        stub.add_response("get_inference_profile", _profile())
        stub.add_response(
            "get_foundation_model", _model("LEGACY", legacyTime=legacy, endOfLifeTime=end)
        )
        result = check_model(bedrock, PROFILE, REGION)
    assert not result.ok
    assert BASE in result.detail
    assert "LEGACY" in result.detail
    assert "2026-06-01" in result.detail and "2027-01-15" in result.detail
    assert result.fix is not None and "-c modelId=" in result.fix and "--model-id" in result.fix


def test_a_profile_not_offered_in_the_region_is_named() -> None:
    with stubbed("bedrock") as (bedrock, stub):
        stub.add_client_error(
            "get_inference_profile",
            service_error_code="ResourceNotFoundException",
            service_message="The provided inference profile ID does not exist",
            http_status_code=404,
        )
        result = check_model(bedrock, PROFILE, "eu-west-1")
    assert not result.ok
    assert PROFILE in result.detail and "eu-west-1" in result.detail
    assert result.fix is not None and "list-inference-profiles --region eu-west-1" in result.fix


def test_a_model_only_invocable_through_a_profile_asks_for_a_profile_id() -> None:
    with stubbed("bedrock") as (bedrock, stub):
        stub.add_response("get_foundation_model", _model(inference=("INFERENCE_PROFILE",)))
        result = check_model(bedrock, BASE, REGION)
    assert not result.ok
    assert "inference profile" in result.detail
    assert result.fix is not None and f"us.{BASE}" in result.fix


def test_an_on_demand_base_model_passes_by_its_own_id() -> None:
    with stubbed("bedrock") as (bedrock, stub):
        stub.add_response("get_foundation_model", _model(inference=("ON_DEMAND",)))
        assert check_model(bedrock, BASE, REGION).ok


def test_a_caller_without_bedrock_read_rights_is_told_which_action() -> None:
    with stubbed("bedrock") as (bedrock, stub):
        stub.add_client_error(
            "get_inference_profile",
            service_error_code="AccessDeniedException",
            http_status_code=403,
        )
        result = check_model(bedrock, PROFILE, REGION)
    assert not result.ok
    assert "bedrock:GetInferenceProfile" in result.detail
    assert result.fix is not None and "bedrock:GetInferenceProfile" in result.fix


# Model access: agreement, authorization, entitlement, region.


def test_model_access_in_place_passes() -> None:
    with stubbed("bedrock") as (bedrock, stub):
        stub.add_response("get_foundation_model_availability", _availability(), {"modelId": BASE})
        assert check_model_access(bedrock, PROFILE).ok


@pytest.mark.parametrize(
    ("answer", "named", "fix_names"),
    [
        (_availability(authorization="NOT_AUTHORIZED"), "not authorized", "first-use"),
        (_availability(agreement="NOT_AVAILABLE"), "no model agreement", "aws-marketplace"),
        (_availability(agreement="PENDING"), "PENDING", "wait"),
        (_availability(entitlement="NOT_AVAILABLE"), "Marketplace entitlement", "Subscribe"),
        (_availability(region="NOT_AVAILABLE"), "not available in this region", "region"),
    ],
)
def test_missing_model_access_is_named_with_its_fix(
    answer: dict[str, Any], named: str, fix_names: str
) -> None:
    with stubbed("bedrock") as (bedrock, stub):
        stub.add_response("get_foundation_model_availability", answer)
        result = check_model_access(bedrock, PROFILE)
    assert not result.ok
    assert BASE in result.detail and named in result.detail, result
    assert result.fix is not None and fix_names in result.fix, result


# Tracing: CloudWatch Transaction Search.


def test_segments_still_going_to_xray_name_transaction_search_and_its_fix() -> None:
    with stubbed("xray") as (xray, stub):
        stub.add_response(
            "get_trace_segment_destination", {"Destination": "XRay", "Status": "ACTIVE"}
        )
        result = check_tracing(xray)
    assert not result.ok
    assert "XRay" in result.detail
    assert result.fix is not None
    assert "Transaction Search" in result.fix
    assert "update-trace-segment-destination --destination CloudWatchLogs" in result.fix


def test_transaction_search_pending_says_to_wait() -> None:
    with stubbed("xray") as (xray, stub):
        stub.add_response(
            "get_trace_segment_destination", {"Destination": "CloudWatchLogs", "Status": "PENDING"}
        )
        result = check_tracing(xray)
    assert not result.ok and "PENDING" in result.detail


def test_transaction_search_active_passes() -> None:
    with stubbed("xray") as (xray, stub):
        stub.add_response(
            "get_trace_segment_destination", {"Destination": "CloudWatchLogs", "Status": "ACTIVE"}
        )
        assert check_tracing(xray).ok


# A deployed stack: runtime status, subscriptions, the alarm topic's policies.


def test_a_failed_runtime_is_named_with_its_reason() -> None:
    arn = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/agentjobs_agent-AbCdE12345"
    with stubbed("bedrock-agentcore-control") as (control, stub):
        stub.add_response(
            "get_agent_runtime",
            {
                "agentRuntimeArn": arn,
                "agentRuntimeName": "agentjobs_agent",
                "agentRuntimeId": "agentjobs_agent-AbCdE12345",
                "agentRuntimeVersion": "3",
                "createdAt": datetime(2026, 11, 1, tzinfo=UTC),
                "lastUpdatedAt": datetime(2026, 11, 1, tzinfo=UTC),
                "roleArn": "arn:aws:iam::123456789012:role/agent",
                "networkConfiguration": {"networkMode": "PUBLIC"},
                "lifecycleConfiguration": {"idleRuntimeSessionTimeout": 900, "maxLifetime": 28800},
                "status": "UPDATE_FAILED",
                "failureReason": "the code package has no main.py",
            },
            {"agentRuntimeId": "agentjobs_agent-AbCdE12345"},
        )
        result = check_runtime(control, arn)
    assert not result.ok
    assert "UPDATE_FAILED" in result.detail and "no main.py" in result.detail


def test_a_value_that_is_not_a_runtime_arn_is_named() -> None:
    result = check_runtime(_client("bedrock-agentcore-control"), "arn:aws:s3:::bucket")
    assert not result.ok and "arn:aws:s3:::bucket" in result.detail


def _subscription(arn: str, endpoint: str, protocol: str = "email") -> dict[str, str]:
    return {
        "SubscriptionArn": arn,
        "Owner": "123456789012",
        "Protocol": protocol,
        "Endpoint": endpoint,
        "TopicArn": TOPIC,
    }


def test_a_pending_email_subscription_is_named_with_the_address() -> None:
    with stubbed("sns") as (sns, stub):
        stub.add_response(
            "list_subscriptions_by_topic",
            {
                "Subscriptions": [
                    _subscription(f"{TOPIC}:0b1c", "ops@example.com"),
                    _subscription("PendingConfirmation", "dev@example.org"),
                ]
            },
            {"TopicArn": TOPIC},
        )
        result = check_subscriptions(sns, TOPIC, alarms=True)
    assert not result.ok
    assert "dev@example.org" in result.detail and "ops@example.com" not in result.detail
    assert result.fix is not None and "Confirm subscription" in result.fix


def test_subscriptions_are_read_across_pages() -> None:
    with stubbed("sns") as (sns, stub):
        stub.add_response(
            "list_subscriptions_by_topic",
            {"Subscriptions": [_subscription(f"{TOPIC}:1", "a@example.com")], "NextToken": "n2"},
        )
        stub.add_response(
            "list_subscriptions_by_topic",
            {"Subscriptions": [_subscription("PendingConfirmation", "b@example.com")]},
            {"TopicArn": TOPIC, "NextToken": "n2"},
        )
        result = check_subscriptions(sns, TOPIC, alarms=True)
    assert not result.ok and "b@example.com" in result.detail


def test_an_alarm_topic_nobody_subscribed_to_fails_but_a_job_topic_may_be_empty() -> None:
    with stubbed("sns") as (sns, stub):
        stub.add_response("list_subscriptions_by_topic", {"Subscriptions": []})
        stub.add_response("list_subscriptions_by_topic", {"Subscriptions": []})
        alarms = check_subscriptions(sns, TOPIC, alarms=True)
        jobs = check_subscriptions(sns, TOPIC, alarms=False)
    assert not alarms.ok and "reach no one" in alarms.detail
    assert alarms.fix is not None and "EMAIL=" in alarms.fix
    assert jobs.ok


TLS_ONLY_DENY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "sns:Publish",
    "Resource": TOPIC,
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
CLOUDWATCH_ALLOW = {
    "Effect": "Allow",
    "Principal": {"Service": "cloudwatch.amazonaws.com"},
    "Action": "sns:Publish",
    "Resource": TOPIC,
    "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
}


def _topic_attributes(*statements: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    attributes = {
        "TopicArn": TOPIC,
        "Policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
    }
    if key:
        attributes["KmsMasterKeyId"] = key
    return {"Attributes": attributes}


def test_the_tls_only_deny_alone_is_named_as_blocking_cloudwatch() -> None:
    with stubbed("sns") as (sns, stub):
        stub.add_response("get_topic_attributes", _topic_attributes(TLS_ONLY_DENY))
        result = check_alarm_topic(sns, _client("kms"), TOPIC)
    assert not result.ok
    assert "cloudwatch.amazonaws.com" in result.detail and "SNS:Publish" in result.detail


def test_an_allow_for_cloudwatch_beside_the_deny_passes_unencrypted() -> None:
    with stubbed("sns") as (sns, stub):
        stub.add_response(
            "get_topic_attributes", _topic_attributes(TLS_ONLY_DENY, CLOUDWATCH_ALLOW)
        )
        assert check_alarm_topic(sns, _client("kms"), TOPIC).ok


def _key(manager: str) -> dict[str, Any]:
    return {"KeyMetadata": {"KeyId": KEY_ID, "KeyManager": manager}}


def test_the_aws_managed_sns_key_is_named_as_unusable_by_cloudwatch() -> None:
    with stubbed("sns") as (sns, sns_stub), stubbed("kms") as (kms, kms_stub):
        sns_stub.add_response(
            "get_topic_attributes", _topic_attributes(CLOUDWATCH_ALLOW, key="alias/aws/sns")
        )
        kms_stub.add_response("describe_key", _key("AWS"), {"KeyId": "alias/aws/sns"})
        result = check_alarm_topic(sns, kms, TOPIC)
    assert not result.ok and "AWS managed key alias/aws/sns" in result.detail


@pytest.mark.parametrize(
    ("key_statement", "ok"),
    [
        (
            {
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
            True,
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
            False,
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"Service": ["cloudwatch.amazonaws.com"]},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
            False,
        ),
    ],
)
def test_a_customer_key_must_let_cloudwatch_decrypt_and_make_data_keys(
    key_statement: dict[str, Any], ok: bool
) -> None:
    with stubbed("sns") as (sns, sns_stub), stubbed("kms") as (kms, kms_stub):
        sns_stub.add_response(
            "get_topic_attributes", _topic_attributes(CLOUDWATCH_ALLOW, key=KEY_ID)
        )
        kms_stub.add_response("describe_key", _key("CUSTOMER"))
        kms_stub.add_response(
            "get_key_policy",
            {"Policy": json.dumps({"Statement": [key_statement]}), "PolicyName": "default"},
            {"KeyId": KEY_ID, "PolicyName": "default"},
        )
        result = check_alarm_topic(sns, kms, TOPIC)
    assert result.ok is ok, result


def test_an_unconditional_deny_beats_an_allow() -> None:
    deny = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "SNS:*", "Resource": TOPIC}
    policy = {"Statement": [CLOUDWATCH_ALLOW, deny]}
    assert not allows(policy, "cloudwatch.amazonaws.com", ("sns:Publish",))
    assert allows({"Statement": CLOUDWATCH_ALLOW}, "cloudwatch.amazonaws.com", ("sns:Publish",))


# Options and the report's shape.


def test_a_bad_region_is_a_usage_error_naming_it_and_what_is_allowed() -> None:
    for text in ("us-east-9", "useast1", "US-EAST-1", ""):
        with pytest.raises(CliError) as caught:
            parse_region(text)
        assert caught.value.code == ExitCode.USAGE
        assert repr(text) in caught.value.message and "us-east-1" in caught.value.message
    assert parse_region("eu-central-1") == "eu-central-1"


def test_a_bad_model_id_form_is_a_usage_error_naming_it() -> None:
    with pytest.raises(CliError) as caught:
        resolve_options("us-east-1", "Claude Sonnet", tracing=False, stack=None)
    assert caught.value.code == ExitCode.USAGE
    assert "'Claude Sonnet'" in caught.value.message and "allowed" in caught.value.message


def test_the_default_model_is_the_one_the_stack_deploys() -> None:
    options = resolve_options("us-west-2", None, tracing=False, stack=None)
    assert options.model_id == DEFAULT_MODEL_ID
    assert split_profile(options.model_id)[1]


def test_each_check_is_one_line_with_a_mark_and_the_fix_only_on_a_miss() -> None:
    lines = report_lines(
        [passed("credentials", "account 1"), missed("bootstrap", "no CDKToolkit", "make bootstrap")]
    )
    assert lines == [
        "✓ credentials  account 1",
        "✗ bootstrap    no CDKToolkit -- fix: make bootstrap",
    ]
    assert all("\n" not in line for line in lines)


def test_an_empty_region_or_model_id_is_refused_not_replaced_by_a_default() -> None:
    with pytest.raises(CliError) as region:
        resolve_options("", None, tracing=False, stack=None)
    assert "--region ''" in region.value.message
    with pytest.raises(CliError) as model:
        resolve_options("us-east-1", "", tracing=False, stack=None)
    assert "''" in model.value.message


def test_a_bad_region_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "moon-base-1")
    with pytest.raises(CliError) as caught:
        resolve_options(None, None, tracing=False, stack=None)
    assert "AWS_REGION 'moon-base-1'" in caught.value.message
    assert caught.value.code == ExitCode.USAGE


@pytest.mark.parametrize("bad", ["", "1Stack", "Agent_Jobs", "a" * 129, "AgentJobs\n"])
def test_a_bad_stack_name_is_a_usage_error_naming_it(bad: str) -> None:
    with pytest.raises(CliError) as caught:
        resolve_options("us-east-1", None, tracing=False, stack=bad)
    assert repr(bad) in caught.value.message
    assert "letters, digits and hyphens" in caught.value.message
    assert resolve_options("us-east-1", None, tracing=False, stack="AgentJobs").stack == "AgentJobs"
