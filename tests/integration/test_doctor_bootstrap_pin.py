"""The bootstrap version doctor demands is the one this app's synthesized stack requires."""

from __future__ import annotations

import json
import os
from pathlib import Path

from aws_cdk import App

import app as cdk_app
from agentjobs.cli.account_checks import BOOTSTRAP_VERSION_PARAMETER, REQUIRED_BOOTSTRAP_VERSION
from infra.bundling import PROJECT_ROOT

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def test_doctor_requires_the_bootstrap_version_the_synthesized_app_requires(
    tmp_path: Path,
) -> None:
    context = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]
    # The real app and synthesizer; only the arm64 bundles are skipped: they do not change
    # what the stack requires of the bootstrap stack, and building them takes minutes.
    app = App(context={**context, "aws:cdk:bundling-stacks": []}, outdir=str(tmp_path))
    stack = cdk_app.build(app)
    app.synth()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    properties = manifest["artifacts"][stack.artifact_id]["properties"]
    assert properties["requiresBootstrapStackVersion"] == REQUIRED_BOOTSTRAP_VERSION
    assert properties["bootstrapStackVersionSsmParameter"] == BOOTSTRAP_VERSION_PARAMETER
    template = json.loads((tmp_path / stack.template_file).read_text())
    rule = template["Rules"]["CheckBootstrapVersion"]["Assertions"][0]["AssertDescription"]
    assert f"version {REQUIRED_BOOTSTRAP_VERSION} required" in rule
