"""Find the job resources: a stack's outputs, the local stack's `.local/env`, or env vars."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from agentjobs.cli.errors import CliError, explain_aws_error
from agentjobs.envfile import EnvFileError, read_env_file

LOCAL_ENV_PATH = Path(".local") / "env"

STACK_OUTPUTS = {
    "runtime_arn": "AgentRuntimeArn",
    "table": "JobsTableName",
    "bucket": "ResultsBucketName",
    "topic_arn": "TopicArn",
}
"""Resource field -> the CloudFormation output of the agentjobs stack that names it."""

OPTIONAL_STACK_OUTPUTS = {"events_table": "EventsTableName"}
"""Outputs a stack deployed before them lacks: only the commands that use them need them."""

_ENV_NAMES = {
    "runtime_arn": "AGENT_RUNTIME_ARN",
    "table": "JOBS_TABLE",
    "events_table": "EVENTS_TABLE",
    "bucket": "RESULTS_BUCKET",
    "topic_arn": "TOPIC_ARN",
    "inbox_queue_url": "INBOX_QUEUE_URL",
}

# botocore's session variables are (config key, environment variable, default, converter);
# no environment variable means AWS_PROFILE is not read.
_NO_PROFILE: dict[str, Any] = {"profile": (None, None, None, None)}

LOCAL_CREDENTIAL_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
LOOPBACK_HOSTS = "loopback (127.0.0.0/8, localhost or ::1)"

NOT_FOUND_HINT = (
    "pass --stack NAME --region REGION for a deployed stack, run `make local-up` for the "
    "local one (it writes .local/env), or set JOBS_TABLE and AGENT_RUNTIME_ARN"
)


@dataclass(frozen=True)
class Resources:
    """Where the jobs live and how to reach them; `source` says where this was found."""

    source: str
    region: str | None = None
    runtime_arn: str | None = None
    table: str | None = None
    events_table: str | None = None
    """The history table (job events); None where the stack predates it."""
    bucket: str | None = None
    topic_arn: str | None = None
    inbox_queue_url: str | None = None
    credentials: dict[str, str] = field(default_factory=dict)
    """Explicit credentials (the local stack's); empty means boto3's usual chain."""
    endpoints: dict[str, str] = field(default_factory=dict)
    """Service name -> endpoint URL; the key "*" applies to every other service."""

    def client(self, service: str, config: Config | None = None) -> Any:
        """A boto3 client of `service` for these resources."""
        endpoint = self.endpoints.get(service) or self.endpoints.get("*")
        try:
            return self._session.client(service, endpoint_url=endpoint, config=config)
        except BotoCoreError as exc:
            raise explain_aws_error(exc, f"creating the {service} client") from exc

    @cached_property
    def _session(self) -> boto3.session.Session:
        # One session for every client of a command: each new session reads botocore's
        # service models again, about 0.1 CPU-s per client.
        botocore_session = None
        if self.credentials:
            # The local stack's own keys: the user's AWS_PROFILE (perhaps one this machine
            # lacks) has no part in calls to it.
            botocore_session = botocore.session.Session(session_vars=_NO_PROFILE)
        return boto3.session.Session(
            region_name=self.region, botocore_session=botocore_session, **self.credentials
        )

    def require(self, name: str) -> str:
        """The named resource, or a CliError saying it is missing from `source`."""
        value = getattr(self, name)
        if not value:
            env_name = _ENV_NAMES.get(name, name)
            raise CliError(f"{self.source} does not name {env_name}: {NOT_FOUND_HINT}")
        return str(value)


def discover(stack: str | None, region: str | None, local_env: Path | None) -> Resources:
    """Resources from `--stack` (CloudFormation outputs), else `--local-env` or ./.local/env,
    else the environment variables the local stack's env file also sets."""
    if stack:
        return from_stack(stack, region)
    if local_env is not None:
        if not local_env.is_file():
            raise CliError(
                f"{local_env} does not exist: start the local stack with `make local-up`, "
                "or pass the path of an existing .local/env"
            )
        return from_env_file(local_env, region)
    if LOCAL_ENV_PATH.is_file():
        return from_env_file(LOCAL_ENV_PATH, region)
    resources = from_environment(region)
    if not (resources.table or resources.runtime_arn):
        raise CliError(f"no agentjobs resources found: {NOT_FOUND_HINT}")
    return resources


def from_env_file(path: Path, region: str | None) -> Resources:
    """The local stack's resources, credentials and endpoints from its env file.

    A file in the working directory is not the user's to vouch for (a cloned repository may
    carry one), so it is honoured only as the local stack writes it: every endpoint on this
    machine, and its own keys to sign with. The user's real credentials (environment,
    profile, instance role) are never sent to an endpoint such a file names."""
    try:
        values = read_env_file(path)
    except EnvFileError as exc:
        raise CliError(f"{path} is not an env file a shell can read: {exc}") from None
    missing = [name for name in LOCAL_CREDENTIAL_NAMES if not values.get(name)]
    if missing:
        raise CliError(
            f"{path} has no {' or '.join(missing)}: the local stack's endpoints are called "
            "only with the keys its own env file holds, never your AWS credentials; "
            "run `make local-up` to write it again"
        )
    credentials = {
        "aws_access_key_id": values["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": values["AWS_SECRET_ACCESS_KEY"],
    }
    if not values.get("AWS_ENDPOINT_URL"):
        raise CliError(
            f"{path} names no AWS_ENDPOINT_URL: a local stack's env file names its moto "
            "endpoint; run `make local-up` to write it again"
        )
    endpoints = {"*": loopback_endpoint(path, "AWS_ENDPOINT_URL", values["AWS_ENDPOINT_URL"])}
    agentcore = values.get("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE")
    if agentcore:
        endpoints["bedrock-agentcore"] = loopback_endpoint(
            path, "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", agentcore
        )
    return Resources(
        source=str(path),
        region=region or values.get("AWS_REGION") or values.get("AWS_DEFAULT_REGION"),
        runtime_arn=values.get("AGENT_RUNTIME_ARN"),
        table=values.get("JOBS_TABLE"),
        events_table=values.get("EVENTS_TABLE"),
        bucket=values.get("RESULTS_BUCKET"),
        topic_arn=values.get("TOPIC_ARN"),
        inbox_queue_url=values.get("INBOX_QUEUE_URL"),
        credentials=credentials,
        endpoints=endpoints,
    )


def loopback_endpoint(path: Path, name: str, value: str) -> str:
    """`value` when it is an http(s) URL of this machine; else a CliError naming it."""
    if not _is_loopback_url(value):
        raise CliError(
            f"{path} names {name}={value}, which is not an endpoint on this machine: a local "
            f"stack's endpoints must be http(s) URLs on {LOOPBACK_HOSTS}; run `make local-up` "
            "to write the file again, or pass --stack NAME for a deployed stack"
        )
    return value


def _is_loopback_url(value: str) -> bool:
    try:
        url = urlsplit(value)
        host = url.hostname or ""
        url.port  # noqa: B018 - raises ValueError for a port that is not one
        on_loopback = host.lower() == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
    # A user part ("http://127.0.0.1@elsewhere") is how a URL hides its real host.
    return url.scheme in ("http", "https") and url.username is None and on_loopback


def from_environment(region: str | None) -> Resources:
    """Resources named by environment variables; boto3 reads endpoints and credentials itself."""
    env = os.environ
    return Resources(
        source="the environment",
        region=region or _env_region(),
        runtime_arn=env.get("AGENT_RUNTIME_ARN"),
        table=env.get("JOBS_TABLE"),
        events_table=env.get("EVENTS_TABLE"),
        bucket=env.get("RESULTS_BUCKET"),
        topic_arn=env.get("TOPIC_ARN"),
        inbox_queue_url=env.get("INBOX_QUEUE_URL"),
    )


def from_stack(stack: str, region: str | None) -> Resources:
    """Resources from a deployed agentjobs stack's CloudFormation outputs."""
    base = Resources(source=f"stack {stack}", region=region or _env_region())
    cloudformation = base.client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            raise CliError(
                f"stack {stack} not found in region {cloudformation.meta.region_name}: "
                "check --stack and --region, or deploy it with `make deploy`"
            ) from exc
        raise explain_aws_error(exc, f"reading stack {stack}") from exc
    except BotoCoreError as exc:
        raise explain_aws_error(exc, f"reading stack {stack}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = sorted(key for key in STACK_OUTPUTS.values() if key not in outputs)
    if missing:
        raise CliError(
            f"stack {stack} has no output(s) {', '.join(missing)}: is it an agentjobs stack? "
            "deploy this project's stack with `make deploy`"
        )
    return Resources(
        source=f"stack {stack}",
        region=cloudformation.meta.region_name,
        runtime_arn=outputs[STACK_OUTPUTS["runtime_arn"]],
        table=outputs[STACK_OUTPUTS["table"]],
        events_table=outputs.get(OPTIONAL_STACK_OUTPUTS["events_table"]),
        bucket=outputs[STACK_OUTPUTS["bucket"]],
        topic_arn=outputs[STACK_OUTPUTS["topic_arn"]],
    )


def _env_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
