"""Synthesize the CDK app once per module and share the assembly; bundles reuse .build/."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

import app as cdk_app
from agentjobs import schema
from infra.bundling import PROJECT_ROOT

EMAILS = ("ops@example.com", "dev@example.org")
MARKETPLACE_PRODUCT_ID = "prod-4pmewlybdftbs"

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass(frozen=True)
class Synth:
    """One synthesized app: its template and where the cloud assembly lives."""

    template: Template
    outdir: Path

    @property
    def raw(self) -> dict[str, Any]:
        return self.template.to_json()  # type: ignore[no-any-return]

    def only(self, resource_type: str, props: Mapping[str, Any] | None = None) -> str:
        """The logical id of the one resource of this type (matching `props`)."""
        found = self.template.find_resources(
            resource_type, {"Properties": props} if props else None
        )
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found))

    def asset_dir(self, object_key: str) -> Path:
        """The staged directory of the file asset uploaded under `object_key`."""
        manifest = json.loads((self.outdir / "AgentJobs.assets.json").read_text())
        for asset in manifest["files"].values():
            keys = {d["objectKey"] for d in asset["destinations"].values()}
            if object_key in keys:
                return self.outdir / asset["source"]["path"]
        raise AssertionError(f"no asset uploads to {object_key}")


def synthesize(outdir: Path, context: Mapping[str, str]) -> Synth:
    """Build the app exactly as app.py does (cdk-nag included) and synthesize it."""
    cdk_json = json.loads((PROJECT_ROOT / "cdk.json").read_text())
    app = App(context={**cdk_json["context"], **context}, outdir=str(outdir))
    cdk_app.build(app)
    app.synth()  # raises if cdk-nag reports any unacknowledged finding
    template = json.loads((outdir / "AgentJobs.template.json").read_text())
    return Synth(Template.from_json(template), outdir)


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """The app with its defaults and two notification emails."""
    yield synthesize(
        tmp_path_factory.mktemp("cdk-default"), {"notificationEmail": ", ".join(EMAILS)}
    )


@pytest.fixture(scope="session")
def custom_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """Every setting away from its default, including the Docker artifact."""
    yield synthesize(
        tmp_path_factory.mktemp("cdk-custom"),
        {
            "pollerRate": "5 minutes",
            "idleTimeout": "1200",
            "maxLifetime": "3600",
            "modelId": "amazon.nova-pro-v1:0",
            "agentArtifact": "docker",
            "resultRetentionDays": "7",
            "emailResultPreview": "true",
        },
    )


@pytest.fixture(scope="session")
def tracing_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """Tracing on, and a Marketplace product the agent may subscribe to on first use."""
    yield synthesize(
        tmp_path_factory.mktemp("cdk-tracing"),
        {
            "notificationEmail": EMAILS[0],
            "tracing": "true",
            "modelMarketplaceProductId": MARKETPLACE_PRODUCT_ID,
        },
    )


@pytest.fixture(scope="module")
def ids(default_synth: Synth) -> dict[str, str]:
    """Logical ids found by resource type and shape, never written down."""
    s = default_synth
    return {
        "table": s.only("AWS::DynamoDB::Table", {"GlobalSecondaryIndexes": Match.any_value()}),
        "events_table": s.only(
            "AWS::DynamoDB::Table", {"KeySchema": schema.events_table_definition()["KeySchema"]}
        ),
        "bucket": s.only(
            "AWS::S3::Bucket",
            {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        Match.object_like(
                            {
                                "ServerSideEncryptionByDefault": Match.object_like(
                                    {"SSEAlgorithm": "aws:kms"}
                                )
                            }
                        )
                    ]
                }
            },
        ),
        "runtime": s.only("AWS::BedrockAgentCore::Runtime"),
        "function": s.only("AWS::Lambda::Function"),
        "queue": s.only("AWS::SQS::Queue", {"MessageRetentionPeriod": 1209600}),
        "signal_queue": s.only("AWS::SQS::Queue", {"RedrivePolicy": Match.any_value()}),
        "signal_dlq": s.only(
            "AWS::SQS::Queue",
            {"MessageRetentionPeriod": Match.absent(), "RedrivePolicy": Match.absent()},
        ),
        "schedule": s.only("AWS::Scheduler::Schedule"),
        "jobs_topic": s.only("AWS::SNS::Topic", {"DisplayName": "agentjobs: finished jobs"}),
        "alarm_topic": s.only("AWS::SNS::Topic", {"DisplayName": "agentjobs: operational alarms"}),
        "store_key": s.only("AWS::KMS::Key", {"Description": "agentjobs: job records and results"}),
        "poller_role": s.only(
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": Match.object_like(
                    {
                        "Statement": [
                            Match.object_like({"Principal": {"Service": "lambda.amazonaws.com"}})
                        ]
                    }
                )
            },
        ),
    }
