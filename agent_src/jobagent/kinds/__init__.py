"""The registry of job kinds: validate a submit's input and find how the kind runs."""

from __future__ import annotations

from typing import Any

from agentjobs.protocol import JobKind
from jobagent.kinds import agent, data_report, synthetic
from jobagent.kinds.base import JobContext, JobFailed, JobStopped, KindSpec
from jobagent.settings import Settings

KINDS: dict[JobKind, KindSpec] = {
    spec.kind: spec for spec in (synthetic.SPEC, data_report.SPEC, agent.SPEC)
}

__all__ = ["KINDS", "JobContext", "JobFailed", "JobStopped", "KindSpec", "parse_input"]


_NO_SETTINGS = Settings(jobs_table=None, results_bucket=None, model_id=None)


def parse_input(kind: JobKind, job_input: dict[str, Any], settings: Settings | None = None) -> Any:
    """The kind's validated parameters under the agent's `settings` (none: an agent with no
    stores); raises ProtocolError(INVALID_INPUT) when they are wrong."""
    return KINDS[kind].parse(job_input, settings or _NO_SETTINGS)
