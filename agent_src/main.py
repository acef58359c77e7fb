"""The project's agent, built on the public job API: `python agent_src/main.py` serves it."""

from __future__ import annotations

from agentjobs.agent import JobApp
from builtin_jobs.analyst import missing_model, run_analyst
from builtin_jobs.data_report import run_data_report
from builtin_jobs.synthetic import TransientFailure, burns_cpu, run_synthetic

# Only definitions at import time: a job's child process imports this module again, and
# /ping must answer within 2 s of start, so Strands and boto3 load inside the jobs.
app = JobApp(default_job="agent")
app.job("synthetic", cpu=burns_cpu, resumable=True, retry_on=(TransientFailure,))(run_synthetic)
app.job("data_report", cpu=True)(run_data_report)
app.job("agent", cpu=True, availability=missing_model)(run_analyst)


if __name__ == "__main__":
    app.run()
