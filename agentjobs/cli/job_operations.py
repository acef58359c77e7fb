"""Job operations behind the commands: submit and cancel through AgentCore, reads from the table."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from agentjobs.cli.discovery import Resources
from agentjobs.cli.errors import CliError, explain_aws_error, one_line
from agentjobs.invocation import AnswerError, decode_answer, invoke_session, refusal_of
from agentjobs.protocol import Action, parse_s3_uri
from agentjobs.record import JobRecord
from agentjobs.store import JobStore, StoreError

# Every submit carries a client token, so boto3's standard retries (which re-send a call
# that timed out) find the same job instead of starting a second one.
_AGENTCORE_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, read_timeout=60)

SESSION_PREFIX = "agentjobs-cli-"


def new_session_id() -> str:
    """A fresh runtime session id; AgentCore wants 33 to 256 characters."""
    return f"{SESSION_PREFIX}{uuid.uuid4().hex}"


def session_for_token(runtime_arn: str, client_token: str) -> str:
    """The session a submit with this client token goes to, the same on every retry: the agent
    scopes a token to its caller's session (or user), so a retried `--client-token` must reach
    the session of the first attempt to find its job instead of starting a second one."""
    digest = hashlib.sha256(f"{runtime_arn}\x1f{client_token}".encode()).hexdigest()
    return f"{SESSION_PREFIX}{digest[:40]}"


def invoke(resources: Resources, session_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Send one request to the agent in `session_id`; return its answer, or raise CliError
    with the agent's own error when it refused the request."""
    runtime_arn = resources.require("runtime_arn")
    agentcore = resources.client("bedrock-agentcore", _AGENTCORE_CONFIG)
    what = f"invoking the agent runtime ({payload.get('action', 'submit')})"
    try:
        body = _invoke_retrying_conflicts(agentcore, runtime_arn, session_id, payload)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "RuntimeClientError":
            raise CliError(
                "the agent failed to answer (RuntimeClientError): see the runtime's logs "
                "(.local/agentcore.log on the local stack, CloudWatch when deployed)"
            ) from exc
        raise explain_aws_error(exc, what) from exc
    except BotoCoreError as exc:
        raise explain_aws_error(exc, what) from exc
    try:
        answer = decode_answer(body)
    except AnswerError as exc:
        raise CliError(f"{exc}: see its logs") from exc
    error = refusal_of(answer)
    if error is not None:
        raise CliError(
            f"the agent refused the request: {error.get('code', 'ERROR')}: "
            f"{one_line(str(error.get('message', '')))}"
        )
    return answer


CONFLICT_RETRIES = 5
CONFLICT_FIRST_DELAY_S = 0.2


def _invoke_retrying_conflicts(
    agentcore: Any, runtime_arn: str, session_id: str, payload: dict[str, Any]
) -> bytes:
    """InvokeAgentRuntime, retried with a short backoff while the session is being created or
    torn down (RetryableConflictException): every request the CLI sends is safe to repeat (a
    submit carries its client token)."""
    delay = CONFLICT_FIRST_DELAY_S
    for attempt in range(1, CONFLICT_RETRIES + 1):
        try:
            _, body = invoke_session(agentcore, runtime_arn, session_id, payload)
            return body
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code != "RetryableConflictException" or attempt == CONFLICT_RETRIES:
                raise
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def submit(
    resources: Resources,
    kind: str,
    job_input: dict[str, Any],
    *,
    client_token: str | None = None,
    max_runtime_s: float | None = None,
    max_attempts: int | None = None,
) -> dict[str, Any]:
    """Start a job in a new session; the agent answers at once with its job and session ids."""
    payload: dict[str, Any] = {
        "action": str(Action.SUBMIT),
        "kind": kind,
        "input": job_input,
        "client_token": client_token or uuid.uuid4().hex,
    }
    if max_runtime_s is not None:
        payload["max_runtime_s"] = max_runtime_s
    if max_attempts is not None:
        payload["max_attempts"] = max_attempts
    session_id = (
        session_for_token(resources.require("runtime_arn"), client_token)
        if client_token is not None
        else new_session_id()
    )
    try:
        return invoke(resources, session_id, payload)
    except CliError:
        # The refused submit started a session with nothing to do; in AWS it would idle,
        # billed, for 15 minutes.
        stop_session(resources, session_id)
        raise


def stop_session(resources: Resources, session_id: str) -> None:
    """Stop a runtime session, best effort: a failure here changes nothing for the caller."""
    try:
        agentcore = resources.client("bedrock-agentcore", _AGENTCORE_CONFIG)
        agentcore.stop_runtime_session(
            agentRuntimeArn=resources.require("runtime_arn"),
            runtimeSessionId=session_id,
            qualifier="DEFAULT",
        )
    except (ClientError, BotoCoreError, CliError):
        pass


def cancel(resources: Resources, record: JobRecord) -> dict[str, Any]:
    """Ask the job's own session to cancel it; the answer is the job after cancelling."""
    return invoke(
        resources, record.session_id, {"action": str(Action.CANCEL), "job_id": record.job_id}
    )


def job_store(resources: Resources) -> JobStore:
    """The job table of these resources."""
    return JobStore(resources.client("dynamodb"), resources.require("table"))


def find_record(
    resources: Resources, job_id: str, store: JobStore | None = None
) -> JobRecord | None:
    """The job's record, or None when the table has no such job."""
    store = store or job_store(resources)
    try:
        return store.get(job_id)
    except StoreError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        raise explain_aws_error(cause, f"reading table {store.table_name}") from exc
    except ValueError as exc:
        raise CliError(f"the record of job {job_id} is malformed: {one_line(str(exc))}") from exc


def get_record(resources: Resources, job_id: str, store: JobStore | None = None) -> JobRecord:
    """The job's record, or a CliError saying there is no such job."""
    record = find_record(resources, job_id, store)
    if record is None:
        raise CliError(
            f"no job {job_id} in table {resources.require('table')} ({resources.source}): "
            "check the id with `agentjobs list`"
        )
    return record


def follow(
    resources: Resources,
    job_id: str,
    on_update: Callable[[JobRecord], None],
    *,
    interval_s: float = 1.0,
    timeout_s: float | None = None,
) -> JobRecord:
    """Read the job's record every `interval_s` until it is terminal or `timeout_s` passes;
    call `on_update` with each record read. Returns the last record."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    store = job_store(resources)
    while True:
        record = get_record(resources, job_id, store)
        on_update(record)
        if record.status.is_terminal:
            return record
        if deadline is not None and time.monotonic() >= deadline:
            return record
        time.sleep(interval_s)


def read_result(resources: Resources, record: JobRecord) -> Any:
    """A SUCCEEDED job's result: inline in the record, or fetched from S3 by its result_uri."""
    if record.result_uri is None:
        return record.result
    try:
        location = parse_s3_uri(record.result_uri)
    except ValueError as exc:
        raise CliError(
            f"job {record.job_id} has a malformed result_uri {record.result_uri}"
        ) from exc
    bucket, key = location.bucket, location.key
    s3 = resources.client("s3")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NoSuchBucket"}:
            raise CliError(
                f"the result of job {record.job_id} is missing from {record.result_uri}: "
                "it may have expired under the bucket's lifecycle rules"
            ) from exc
        raise explain_aws_error(exc, f"reading {record.result_uri}") from exc
    except BotoCoreError as exc:
        raise explain_aws_error(exc, f"reading {record.result_uri}") from exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CliError(f"the result at {record.result_uri} is not JSON") from exc
