"""`agentjobs doctor` (the console script once, its entry point in-process after) against a moto
server (STS, CloudFormation, SSM, SNS, KMS, AgentCore control) and a small stand-in for the
Bedrock and X-Ray reads moto lacks: exit codes, one line per check, never a traceback."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest

from agentjobs.cli.account_checks import (
    REQUIRED_BOOTSTRAP_VERSION,
    check_agentcore,
    check_bootstrap,
)
from agentjobs.cli.stack_checks import check_stack
from agentjobs.model_ids import DEFAULT_MODEL_ID, split_profile
from emulator.ports import free_port
from testbed.aws import MotoEndpoint, moto_server
from tests.support.cli import CliRun, InProcessCli, assert_one_line_error, hermetic_env, run_cli

ACCOUNT = "123456789012"


@dataclass
class BedrockAnswers:
    """What the stand-in answers: JSON bodies by request path, else 404 ResourceNotFound."""

    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)

    def model_in_place(self, model_id: str, **availability: str) -> None:
        prefix, base = split_profile(model_id)
        if prefix is not None:
            self.bodies[f"/inference-profiles/{model_id}"] = {
                "inferenceProfileName": f"{prefix} profile",
                "inferenceProfileArn": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/x",
                "inferenceProfileId": model_id,
                "models": [],
                "status": "ACTIVE",
                "type": "SYSTEM_DEFINED",
            }
        self.bodies[f"/foundation-models/{base}"] = {
            "modelDetails": {
                "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{base}",
                "modelId": base,
                "modelName": "Default model",
                "providerName": "Provider",
                "inferenceTypesSupported": ["INFERENCE_PROFILE"],
                "modelLifecycle": {"status": "ACTIVE"},
            }
        }
        self.bodies[f"/foundation-model-availability/{base}"] = {
            "modelId": base,
            "agreementAvailability": {"status": availability.get("agreement", "AVAILABLE")},
            "authorizationStatus": availability.get("authorization", "AUTHORIZED"),
            "entitlementAvailability": availability.get("entitlement", "AVAILABLE"),
            "regionAvailability": "AVAILABLE",
        }


def _handler(answers: BedrockAnswers) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            path = unquote(self.path.split("?", 1)[0])
            body = answers.bodies.get(path)
            status, error = (200, None) if body is not None else (404, "ResourceNotFoundException")
            payload = json.dumps(body if body is not None else {"message": f"{path} not found"})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if error:
                self.send_header("x-amzn-ErrorType", error)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload.encode())

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoEndpoint]:
    """A moto server of this module's own: the bootstrap stack is per account and region."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def bedrock() -> Iterator[tuple[str, BedrockAnswers]]:
    """The Bedrock and X-Ray stand-in on a free port, stopped after the test."""
    answers = BedrockAnswers()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(answers))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    """The console script's entry point in this process: a subprocess per run would cost an
    interpreter start and the CLI's imports each time, and the first test already runs the
    console script itself."""
    return InProcessCli(monkeypatch, capsys)


@pytest.fixture
def region() -> Iterator[str]:
    """A region nobody else in this module uses: moto's state is per region."""
    yield next(_REGIONS)


_REGIONS = iter(
    (
        *("us-east-2", "us-west-2", "us-west-1", "ca-central-1", "sa-east-1"),
        *("eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1", "us-east-1"),
        *("ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ap-northeast-2"),
    )
)


def doctor_env(aws: MotoEndpoint, bedrock_url: str, region: str, **extra: str) -> dict[str, str]:
    return hermetic_env(
        **{
            **aws.env(),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL_BEDROCK": bedrock_url,
            "AWS_ENDPOINT_URL_XRAY": bedrock_url,
            **extra,
        }
    )


def bootstrap(aws: MotoEndpoint, region: str, version: int | None) -> None:
    """A CDKToolkit stack as `cdk bootstrap` leaves it (with or without its version output)."""
    session = aws.session()
    cloudformation = session.client("cloudformation", endpoint_url=aws.url, region_name=region)
    template: dict[str, Any] = {
        "Resources": {"Staging": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}
    }
    if version is not None:
        template["Outputs"] = {"BootstrapVersion": {"Value": str(version)}}
    cloudformation.create_stack(StackName="CDKToolkit", TemplateBody=json.dumps(template))


def line_of(run: CliRun, check: str) -> str:
    found = [line for line in run.stdout.splitlines() if line[2:].split(" ", 1)[0] == check]
    assert len(found) == 1, str(run)
    return found[0]


def assert_no_traceback(run: CliRun) -> None:
    assert "Traceback" not in run.stdout + run.stderr, str(run)


# The account before the first deploy.


def test_an_empty_account_reports_the_missing_bootstrap_and_exits_1(
    aws: MotoEndpoint, bedrock: tuple[str, BedrockAnswers], region: str
) -> None:
    url, answers = bedrock
    answers.model_in_place(DEFAULT_MODEL_ID)
    run = run_cli("doctor", env=doctor_env(aws, url, region))
    assert run.code == 1, str(run)
    assert_no_traceback(run)
    line = line_of(run, "bootstrap")
    assert line.startswith("✗ ")
    assert f"no CDKToolkit stack in {region}" in line
    assert "make bootstrap" in line and f"aws://{ACCOUNT}/{region}" in line
    assert line_of(run, "credentials").startswith("✓ ")
    assert ACCOUNT in line_of(run, "credentials")


def test_a_bootstrapped_account_with_model_access_passes_everything_and_exits_0(
    aws: MotoEndpoint, bedrock: tuple[str, BedrockAnswers], region: str, cli: InProcessCli
) -> None:
    url, answers = bedrock
    answers.model_in_place(DEFAULT_MODEL_ID)
    bootstrap(aws, region, 29)
    run = cli("doctor", env=doctor_env(aws, url, region))
    assert run.code == 0, str(run)
    assert_no_traceback(run)
    assert "✓ " in line_of(run, "bootstrap") and "version 29" in line_of(run, "bootstrap")
    checks = [line[2:].split(" ", 1)[0] for line in run.stdout.splitlines() if line[:2] == "✓ "]
    assert checks == ["credentials", "bootstrap", "agentcore", "model", "model-access"]
    assert DEFAULT_MODEL_ID in line_of(run, "model")


def test_missing_model_access_is_named_in_the_json_report(
    aws: MotoEndpoint, bedrock: tuple[str, BedrockAnswers], region: str, cli: InProcessCli
) -> None:
    url, answers = bedrock
    answers.model_in_place("us.amazon.nova-pro-v1:0", entitlement="NOT_AVAILABLE")
    bootstrap(aws, region, REQUIRED_BOOTSTRAP_VERSION)
    run = cli(
        "doctor",
        "--json",
        "--model-id",
        "us.amazon.nova-pro-v1:0",
        env=doctor_env(aws, url, region),
    )
    assert run.code == 1, str(run)
    report = run.json()
    assert [set(entry) for entry in report] == [{"check", "ok", "detail", "fix"}] * len(report)
    by_check = {entry["check"]: entry for entry in report}
    assert by_check["bootstrap"]["ok"] is True and by_check["bootstrap"]["fix"] is None
    access = by_check["model-access"]
    assert access["ok"] is False
    assert "amazon.nova-pro-v1:0" in access["detail"] and "Marketplace" in access["detail"]
    assert "aws-marketplace:Subscribe" in access["fix"]


def test_a_bootstrap_older_than_the_app_needs_says_upgrade(
    aws: MotoEndpoint, bedrock: tuple[str, BedrockAnswers], region: str, cli: InProcessCli
) -> None:
    url, answers = bedrock
    answers.model_in_place(DEFAULT_MODEL_ID)
    bootstrap(aws, region, REQUIRED_BOOTSTRAP_VERSION - 1)
    run = cli("doctor", env=doctor_env(aws, url, region))
    assert run.code == 1
    line = line_of(run, "bootstrap")
    assert f"needs at least {REQUIRED_BOOTSTRAP_VERSION}" in line and "upgrade" in line


def test_a_bootstrap_stack_without_the_output_is_read_from_the_ssm_parameter(
    aws: MotoEndpoint, region: str
) -> None:
    bootstrap(aws, region, None)
    cloudformation = aws.session().client(
        "cloudformation", endpoint_url=aws.url, region_name=region
    )
    ssm = aws.session().client("ssm", endpoint_url=aws.url, region_name=region)
    assert not check_bootstrap(cloudformation, ssm, ACCOUNT, region).ok
    ssm.put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="21", Type="String")
    result = check_bootstrap(cloudformation, ssm, ACCOUNT, region)
    assert result.ok and "version 21" in result.detail, result


def test_tracing_without_transaction_search_names_the_fix(
    aws: MotoEndpoint, bedrock: tuple[str, BedrockAnswers], region: str, cli: InProcessCli
) -> None:
    url, answers = bedrock
    answers.model_in_place(DEFAULT_MODEL_ID)
    answers.bodies["/GetTraceSegmentDestination"] = {"Destination": "XRay", "Status": "ACTIVE"}
    bootstrap(aws, region, 29)
    plain = cli("doctor", env=doctor_env(aws, url, region))
    assert plain.code == 0, str(plain)
    run = cli("doctor", "--tracing", env=doctor_env(aws, url, region))
    assert run.code == 1, str(run)
    line = line_of(run, "tracing")
    assert line.startswith("✗ ") and "Transaction Search" in line and "tracing=true" in line


# Bad input and a broken environment: one line, non-zero, no traceback.


def test_no_credentials_is_one_line_and_exits_1(region: str, cli: InProcessCli) -> None:
    run = cli("doctor", "--region", region)
    assert_one_line_error(run, "no AWS credentials", "aws configure", "AWS_PROFILE")
    assert run.code == 1
    assert run.stdout == ""


def test_an_unreachable_endpoint_is_one_line_and_exits_1(
    aws: MotoEndpoint, region: str, cli: InProcessCli
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    env = hermetic_env(**{**aws.env(), "AWS_ENDPOINT_URL": closed})
    run = cli("doctor", "--region", region, env=env)
    assert_one_line_error(run, "cannot reach", closed)
    assert run.code == 1


@pytest.mark.parametrize("bad", ["us-nowhere-1", "Frankfurt", "eu_central_1"])
def test_a_bad_region_names_the_value_and_what_is_allowed(
    aws: MotoEndpoint, bad: str, cli: InProcessCli
) -> None:
    run = cli("doctor", "--region", bad, env=hermetic_env(**aws.env()))
    assert_one_line_error(run, repr(bad), "us-east-1", "AgentCore Runtime is offered in")
    assert run.code == 2


def test_a_bad_model_id_form_names_the_value_and_what_is_allowed(
    aws: MotoEndpoint, cli: InProcessCli
) -> None:
    run = cli("doctor", "--model-id", "claude sonnet", env=hermetic_env(**aws.env()))
    assert_one_line_error(run, "'claude sonnet'", "allowed")
    assert run.code == 2


def test_a_region_without_agentcore_names_it_and_the_regions_that_have_it(
    aws: MotoEndpoint, bedrock: tuple[str, BedrockAnswers], cli: InProcessCli
) -> None:
    url, answers = bedrock
    answers.model_in_place(DEFAULT_MODEL_ID)
    # No AgentCore endpoint answers in af-south-1: a closed port stands in for that host.
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = doctor_env(aws, url, "af-south-1", AWS_ENDPOINT_URL_BEDROCK_AGENTCORE_CONTROL=nowhere)
    run = cli("doctor", env=env)
    assert run.code == 1, str(run)
    assert_no_traceback(run)
    line = line_of(run, "agentcore")
    assert "not offered in af-south-1" in line and "us-east-1" in line and "--region" in line


def test_a_listed_region_whose_control_plane_is_unreachable_says_cannot_reach(
    aws: MotoEndpoint, region: str
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    control = aws.session().client(
        "bedrock-agentcore-control", endpoint_url=nowhere, region_name=region
    )
    result = check_agentcore(control, region)
    assert not result.ok and "cannot reach" in result.detail and nowhere in result.detail


# After the deploy: --stack NAME.


@dataclass(frozen=True)
class DeployedStack:
    name: str
    alarm_topic: str
    jobs_topic: str
    key_id: str


def deploy_stand_in(aws: MotoEndpoint, region: str, *, outputs: bool = True) -> DeployedStack:
    """What the stack's outputs point at, made through the APIs, and a stack naming them."""
    session = aws.session()

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=aws.url, region_name=region)

    sns, kms = client("sns"), client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    alarm_topic = sns.create_topic(Name="Alarms", Attributes={"KmsMasterKeyId": key_id})
    jobs_topic = sns.create_topic(Name="Jobs")["TopicArn"]
    sns.subscribe(TopicArn=alarm_topic["TopicArn"], Protocol="email", Endpoint="ops@example.com")
    runtime = client("bedrock-agentcore-control").create_agent_runtime(
        agentRuntimeName=f"agent_{uuid.uuid4().hex[:8]}",
        agentRuntimeArtifact={
            "codeConfiguration": {
                "code": {"s3": {"bucket": "assets", "prefix": "agent.zip"}},
                "runtime": "PYTHON_3_13",
                "entryPoint": ["main.py"],
            }
        },
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/agent",
        networkConfiguration={"networkMode": "PUBLIC"},
    )
    values = {
        # The ARN as AgentCore forms it (moto's own ARN has another shape).
        "AgentRuntimeArn": f"arn:aws:bedrock-agentcore:{region}:{ACCOUNT}:runtime/"
        f"{runtime['agentRuntimeId']}",
        "JobsTableName": "jobs",
        "ResultsBucketName": "results",
        "TopicArn": jobs_topic,
        "AlarmTopicArn": alarm_topic["TopicArn"],
    }
    if not outputs:
        values.pop("AlarmTopicArn")
    name = f"AgentJobs{uuid.uuid4().hex[:6]}"
    client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(
            {
                "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {key: {"Value": value} for key, value in values.items()},
            }
        ),
    )
    return DeployedStack(name, alarm_topic["TopicArn"], jobs_topic, key_id)


def test_a_deployed_stack_is_checked_to_its_alarm_topic_policy_and_key(
    aws: MotoEndpoint, region: str
) -> None:
    stack = deploy_stand_in(aws, region)
    session = aws.session()

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=aws.url, region_name=region)

    first = {r.check: r for r in check_stack(client, stack.name)}
    assert list(first) == [
        "stack",
        "runtime",
        "alarm-subscriptions",
        "job-subscriptions",
        "alarm-topic",
    ]
    assert first["stack"].ok and first["runtime"].ok, first
    assert first["alarm-subscriptions"].ok and first["job-subscriptions"].ok, first
    # moto's default topic policy names no service: CloudWatch could not publish.
    assert not first["alarm-topic"].ok
    assert "cloudwatch.amazonaws.com" in first["alarm-topic"].detail

    sns, kms = client("sns"), client("kms")
    allow = {
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": stack.alarm_topic,
    }
    sns.set_topic_attributes(
        TopicArn=stack.alarm_topic,
        AttributeName="Policy",
        AttributeValue=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
    )
    keyless = {r.check: r for r in check_stack(client, stack.name)}["alarm-topic"]
    assert not keyless.ok and "key policy" in keyless.detail, keyless

    key_policy = json.loads(kms.get_key_policy(KeyId=stack.key_id, PolicyName="default")["Policy"])
    key_policy["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        }
    )
    kms.put_key_policy(KeyId=stack.key_id, PolicyName="default", Policy=json.dumps(key_policy))
    assert {r.check: r for r in check_stack(client, stack.name)}["alarm-topic"].ok


def test_stack_checks_through_the_cli_name_a_missing_stack_and_missing_outputs(
    aws: MotoEndpoint, bedrock: tuple[str, BedrockAnswers], region: str, cli: InProcessCli
) -> None:
    url, answers = bedrock
    answers.model_in_place(DEFAULT_MODEL_ID)
    env = doctor_env(aws, url, region)
    missing = cli("doctor", "--stack", "NoSuchStack", "--json", env=env)
    assert missing.code == 1
    entry = {e["check"]: e for e in missing.json()}["stack"]
    assert entry["ok"] is False and f"no stack NoSuchStack in {region}" in entry["detail"]

    old = deploy_stand_in(aws, region, outputs=False)
    run = cli("doctor", "--stack", old.name, env=env)
    assert run.code == 1
    assert_no_traceback(run)
    assert "AlarmTopicArn" in line_of(run, "stack") and "make deploy" in line_of(run, "stack")
