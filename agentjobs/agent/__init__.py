"""Long-running jobs on AgentCore: declare a function with `@app.job(name)`, serve `app.run()`."""

from agentjobs.agent.app import JobApp, is_job_request
from agentjobs.agent.context import CheckpointError, JobContext, JobFailed, JobStopped
from agentjobs.agent.declarations import JobDeclarationError

__all__ = [
    "CheckpointError",
    "JobApp",
    "JobContext",
    "JobDeclarationError",
    "JobFailed",
    "JobStopped",
    "is_job_request",
]
