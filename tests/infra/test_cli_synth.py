"""`cdk synth` through the pinned CLI, as a user runs it, then cfn-lint on the template."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from infra.bundling import PROJECT_ROOT

CDK = PROJECT_ROOT / "node_modules" / ".bin" / "cdk"


@pytest.fixture(scope="module")
def cli_assembly() -> Path:
    # `make test` installs the CLI first (npm ci); a missing CLI is a setup error.
    assert CDK.exists(), "the CDK CLI is not installed: run `make test` (it runs npm ci)"
    # A persistent output folder: like a user's cdk.out, a repeated synth reuses staged assets.
    outdir = PROJECT_ROOT / ".build" / "cli-test.out"
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    npx = shutil.which("npx")
    assert npx, "Node's npx is needed for the CDK CLI"
    result = subprocess.run(
        [npx, "--no-install", "cdk", "synth", "--quiet", "--output", str(outdir),
         "-c", "notificationEmail=me@example.com"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return outdir


def test_cli_synth_writes_the_agentjobs_template(cli_assembly: Path) -> None:
    assert (cli_assembly / "AgentJobs.template.json").is_file()
    assert (cli_assembly / "manifest.json").is_file()


def test_cfn_lint_finds_nothing_in_the_synthesized_template(cli_assembly: Path) -> None:
    cfn_lint = PROJECT_ROOT / ".venv" / "bin" / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), str(cli_assembly / "AgentJobs.template.json")],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unacknowledged_nag_finding_fails_the_synth(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Probe")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match=r"AwsSolutions-IAM5\[Resource::\*\]"):
        app.synth()
