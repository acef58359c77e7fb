"""The CDK app: read the settings once, build the AgentJobs stack, check it with cdk-nag."""

from __future__ import annotations

import sys

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.bundling import BundlingError
from infra.settings import DeploySettings, DeploySettingsError
from infra.stack import AgentJobsStack

STACK_NAME = "AgentJobs"


def build(app: App) -> AgentJobsStack:
    """Add the stack and the cdk-nag checks to `app`.

    Raises DeploySettingsError on bad context, BundlingError when the agent folder's requirements
    cannot be read or installed for the runtime.
    """
    settings = DeploySettings.from_context(app.node.try_get_context)
    stack = AgentJobsStack(app, STACK_NAME, settings=settings)
    # Every synth runs AWS Solutions checks; any unacknowledged finding fails it.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


def main() -> None:
    """Synthesize, or stop with one line naming the invalid setting or what cannot be bundled."""
    app = App()
    try:
        build(app)
    except DeploySettingsError as exc:
        sys.exit(f"agentjobs: invalid context value: {exc}")
    except BundlingError as exc:
        sys.exit(f"agentjobs: cannot bundle the agent: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
