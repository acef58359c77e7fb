"""A job's end: taken from the agent's final answer or its stored outcome, written once."""

from __future__ import annotations

from dataclasses import replace

from aws_lambda_powertools import Logger

from agentjobs import schema
from agentjobs.history import Event, EventType
from agentjobs.protocol import ErrorCode, JobStatus, encode_json, utc_now
from agentjobs.record import INLINE_RESULT_LIMIT, JobError, JobRecord, StoredJob
from agentjobs.store import ResultConflictError
from jobpoller.answers import Finished, time_of
from jobpoller.answers import read_answer_object as read_outcome
from jobpoller.attempts import is_stale, later_attempt
from jobpoller.lease import Ending, Lease
from jobpoller.report import FINISHED_METRIC, Metric
from jobpoller.services import Pass

logger = Logger(service="poller", child=True)


def end_job(job: StoredJob, run: Pass, lease: Lease, ending: Ending) -> StoredJob:
    """The one place a job's end is written: its terminal status, counted and logged."""
    now = utc_now()
    finished = lease.finish(ending, finished_at=time_of(ending.finished_at) or now, at=now)
    run.report.count(FINISHED_METRIC[ending.status])
    detail: dict[str, str | None] = {"status": str(ending.status)}
    if ending.error is not None:
        detail["error_code"] = ending.error.code
    attempt = finished.attempt if isinstance(finished, JobRecord) else 1
    ended = Event(
        EventType.ENDED,
        at=now,
        attempt=attempt,
        session_id=finished.active_session_id,
        detail=detail,
    )
    run.record_event(finished, ended)
    logger.info(
        "job finished",
        extra={
            "job_id": job.job_id,
            "session_id": job.active_session_id,
            "status": str(ending.status),
        },
    )
    return finished


def finish_from_answer(job: StoredJob, run: Pass, lease: Lease, answer: Finished) -> StoredJob:
    """End the job as the agent's final answer says, once its result is where it belongs
    (and with the attempt that ended, when the agent retried the job since the last poll)."""
    ending = replace(_ending_of(job, run, answer), attempt=later_attempt(job, answer.attempt))
    return end_job(job, run, lease, ending)


def _ending_of(job: StoredJob, run: Pass, answer: Finished) -> Ending:
    results = run.services.results
    own_uri = results.uri(schema.result_key(job.job_id))
    at = answer.finished_at
    if answer.status == JobStatus.SUCCEEDED and answer.result_uri is not None:
        if answer.result_uri != own_uri:
            # Only the job's own result object may be pointed to: any other key in the bucket
            # would hand the job's readers another job's data (or a caller's input).
            logger.error(
                "result_uri is not the job's own result object",
                extra={"job_id": job.job_id, "result_uri": answer.result_uri[:300]},
            )
            run.report.count(Metric.BAD_ANSWERS)
            error = JobError.of(
                ErrorCode.RESULT_REFUSED,
                f"the agent pointed to a result that is not this job's own; expected {own_uri}",
            )
            return Ending.failed(error, finished_at=at)
        if not results.exists(answer.result_uri):
            logger.error(
                "result_uri points to a missing object",
                extra={"job_id": job.job_id, "result_uri": answer.result_uri},
            )
            run.report.count(Metric.BAD_ANSWERS)
            error = JobError.of(ErrorCode.RESULT_MISSING, f"the result at {own_uri} does not exist")
            return Ending.failed(error, finished_at=at)
        return Ending(answer.status, result_uri=own_uri, finished_at=at, progress=answer.progress)
    if answer.status == JobStatus.SUCCEEDED:
        encoded = encode_json(answer.result).encode()
        if len(encoded) > INLINE_RESULT_LIMIT:
            # Too big for the record: keep it in S3 and point to it, as the agent would.
            logger.warning(
                "inline result too large for the record; stored in S3",
                extra={"job_id": job.job_id, "bytes": len(encoded)},
            )
            try:
                uri = results.put_result_once(job.job_id, encoded)
            except ResultConflictError as exc:
                logger.error("a different result is already stored", extra={"job_id": job.job_id})
                run.report.count(Metric.BAD_ANSWERS)
                error = JobError.of(
                    ErrorCode.RESULT_REFUSED, f"the agent answered a result, but {exc}"
                )
                return Ending.failed(error, finished_at=at)
            return Ending(answer.status, result_uri=uri, finished_at=at, progress=answer.progress)
    return Ending(
        answer.status,
        result=answer.result,
        error=answer.error,
        finished_at=at,
        progress=answer.progress,
    )


def stored_outcome(job: StoredJob, run: Pass) -> Finished | None:
    """The job's durable outcome in S3, when the agent stored a usable one of the current
    attempt (an earlier attempt's is stale: the job was resumed after it)."""
    outcome = run.services.results.get_outcome(job.job_id)
    stored = read_outcome(outcome, job.job_id) if outcome is not None else None
    if not isinstance(stored, Finished) or is_stale(job, stored):
        return None
    return stored
