"""The registry of job kinds: validate a submit's input and find how the kind runs."""

from __future__ import annotations

from typing import Any

from agentjobs.protocol import JobKind
from jobagent.kinds import agent, data_report, synthetic
from jobagent.kinds.base import JobContext, JobFailed, JobStopped, KindSpec

KINDS: dict[JobKind, KindSpec] = {
    spec.kind: spec for spec in (synthetic.SPEC, data_report.SPEC, agent.SPEC)
}

__all__ = ["KINDS", "JobContext", "JobFailed", "JobStopped", "KindSpec", "parse_input"]


def parse_input(kind: JobKind, job_input: dict[str, Any]) -> Any:
    """The kind's validated parameters; raises ProtocolError(INVALID_INPUT) when they are wrong."""
    return KINDS[kind].parse(job_input)
