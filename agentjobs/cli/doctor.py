"""`agentjobs doctor`: what an account and region lack before (and after) `make deploy`."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import boto3
import botocore.session
import typer
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from agentjobs.cli import render
from agentjobs.cli.account_checks import (
    AGENTCORE_RUNTIME_REGIONS,
    check_agentcore,
    check_bootstrap,
    check_credentials,
    check_model,
    check_model_access,
    check_tracing,
)
from agentjobs.cli.checks import CheckResult, ClientFactory
from agentjobs.cli.errors import CliError, ExitCode
from agentjobs.cli.stack_checks import check_stack
from agentjobs.model_ids import DEFAULT_MODEL_ID, ModelIdError, parse_model_id

EXIT_CODES_HELP = (
    "Exit codes: 0 every check passed, 1 a check failed (or no credentials, or AWS "
    "unreachable), 2 bad input (an option's value, or no region)."
)

_REGION_FORM = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
# Short timeouts and one retry: a preflight that hangs on an unreachable endpoint helps nobody.
_CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=20, retries={"total_max_attempts": 2, "mode": "standard"}
)


@dataclass(frozen=True)
class DoctorOptions:
    """What to check: the region always; tracing and a deployed stack when asked."""

    region: str
    model_id: str
    tracing: bool = False
    stack: str | None = None


def known_regions() -> frozenset[str]:
    """Every region botocore knows, in every partition."""
    partitions = botocore.session.get_session().get_data("partitions")["partitions"]
    return frozenset(
        region
        for partition in partitions
        for region in partition.get("regions", {})
        if not region.endswith("-global")
    )


def parse_region(text: str, source: str = "--region") -> str:
    """`text` when it names an AWS region botocore knows; CliError (usage) otherwise."""
    if not _REGION_FORM.fullmatch(text) or text not in known_regions():
        raise CliError(
            f"{source} {text!r} is not an AWS region; allowed: a region such as us-east-1 "
            f"(AgentCore Runtime is offered in {', '.join(AGENTCORE_RUNTIME_REGIONS)})",
            ExitCode.USAGE,
        )
    return text


def resolve_options(
    region: str | None, model_id: str | None, *, tracing: bool, stack: str | None
) -> DoctorOptions:
    """Validated options: --region or the environment's region, --model-id or the default."""
    if region is not None:
        chosen = parse_region(region)
    else:
        found = [
            (name, os.environ[name])
            for name in ("AWS_REGION", "AWS_DEFAULT_REGION")
            if os.environ.get(name)
        ]
        profile_region = boto3.session.Session().region_name
        if not found and profile_region:
            found = [("the profile's region", profile_region)]
        if not found:
            raise CliError(
                "no AWS region: pass --region REGION or set AWS_REGION (AgentCore Runtime is "
                f"offered in {', '.join(AGENTCORE_RUNTIME_REGIONS)})",
                ExitCode.USAGE,
            )
        source, text = found[0]
        chosen = parse_region(text, source)
    try:
        model = parse_model_id(DEFAULT_MODEL_ID if model_id is None else model_id)
    except ModelIdError as exc:
        raise CliError(f"--model-id: {exc}", ExitCode.USAGE) from None
    if stack is not None and not _STACK_NAME.fullmatch(stack):
        raise CliError(
            f"--stack {stack!r} is not a CloudFormation stack name; allowed: a letter, then "
            "letters, digits and hyphens, at most 128 characters (the stack's name, e.g. "
            "AgentJobs)",
            ExitCode.USAGE,
        )
    return DoctorOptions(chosen, model, tracing=tracing, stack=stack)


def boto_clients(region: str) -> ClientFactory:
    """Clients of the environment's credentials in `region`, made once per service."""
    session = boto3.session.Session(region_name=region)
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            try:
                made[service] = session.client(service, config=_CLIENT_CONFIG)
            except BotoCoreError as exc:
                raise CliError(f"cannot make a {service} client in {region}: {exc}") from exc
        return made[service]

    return client


def run_doctor(options: DoctorOptions, client: ClientFactory) -> list[CheckResult]:
    """Every check `options` asks for, in the order a newcomer meets them. Without working
    credentials nothing else can be checked: that is a CliError, one line."""
    credentials, account = check_credentials(client("sts"))
    if not credentials.ok:
        raise CliError(f"{credentials.detail}: {credentials.fix}")
    region = options.region
    results = [
        credentials,
        check_bootstrap(client("cloudformation"), client("ssm"), account, region),
        check_agentcore(client("bedrock-agentcore-control"), region),
        check_model(client("bedrock"), options.model_id, region),
        check_model_access(client("bedrock"), options.model_id),
    ]
    if options.tracing:
        results.append(check_tracing(client("xray")))
    if options.stack:
        results.extend(check_stack(client, options.stack))
    return results


def report_lines(results: list[CheckResult], *, unicode: bool = True) -> list[str]:
    """One line per check: a mark, the check, what it found and, on a miss, the fix."""
    good, bad = ("✓", "✗") if unicode else ("ok", "XX")
    width = max(len(r.check) for r in results)
    lines = []
    for result in results:
        line = f"{good if result.ok else bad} {result.check:<{width}}  {result.detail}"
        if not result.ok and result.fix:
            line += f" -- fix: {result.fix}"
        lines.append(line)
    return lines


def doctor_command(
    *,
    region: Annotated[
        str | None,
        typer.Option("--region", help="The region to deploy to (default: AWS_REGION or profile)."),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            help="Also check this deployed stack: outputs, runtime, subscriptions, alarm topic.",
        ),
    ] = None,
    tracing: Annotated[
        bool,
        typer.Option("--tracing", help="Also check what -c tracing=true needs."),
    ] = False,
    model_id: Annotated[
        str | None,
        typer.Option(
            "--model-id", help=f"The model you deploy with (default: {DEFAULT_MODEL_ID})."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of {check, ok, detail, fix}.")
    ] = False,
) -> None:
    """Preflight: check with read-only calls that the account and region have what a deploy
    needs (credentials, CDK bootstrap, AgentCore, the model; tracing and a deployed stack when
    asked). Each missed check names its fix."""
    options = resolve_options(region, model_id, tracing=tracing, stack=stack)
    results = run_doctor(options, boto_clients(options.region))
    if as_json:
        render.print_json([r.to_json() for r in results])
    else:
        encoding = (sys.stdout.encoding or "").lower().replace("-", "")
        for line in report_lines(results, unicode=encoding in {"utf8", "utf16", "utf32"}):
            print(line)
        failed = sum(not r.ok for r in results)
        if failed:
            print(f"{failed} of {len(results)} checks failed in {options.region}.")
    if not all(r.ok for r in results):
        raise typer.Exit(ExitCode.ERROR)
