"""Every bound on what a caller or a job hands us: one set, used where each value enters."""

from __future__ import annotations

# Why these numbers: DynamoDB holds 400 KB per item and SNS 256 KB per message, so every
# text that reaches a record or a notification is bounded well below both, whoever wrote
# it (a caller, a job, an agent's answer). AgentCore's own bounds are noted where they apply.

MAX_INPUT_BYTES = 1_000_000
"""Largest accepted `input`, JSON-encoded. Bigger data goes to S3 and is passed by URI."""

MAX_JOB_ID_CHARS = 128
"""Job ids we mint are 32 hex characters; anything longer is not one of ours."""

MAX_CLIENT_TOKEN_CHARS = 256
MAX_KIND_CHARS = 64
"""A job kind's name (see protocol.JOB_NAME_PATTERN)."""

MIN_SESSION_ID_CHARS = 33
MAX_SESSION_ID_CHARS = 256
"""AgentCore's bounds on `runtimeSessionId` (boto3 refuses ids outside them)."""

MAX_OWNER_CHARS = 256
"""The caller's user id (`X-Amzn-Bedrock-AgentCore-Runtime-User-Id`)."""

MIN_S3_BUCKET_CHARS = 3
MAX_S3_BUCKET_CHARS = 63
MAX_S3_KEY_BYTES = 1024
"""S3's own bounds: bucket names of 3 to 63 characters, object keys of at most 1,024 bytes
(UTF-8). https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html and
https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html"""

MAX_S3_URI_CHARS = len("s3://") + MAX_S3_BUCKET_CHARS + 1 + MAX_S3_KEY_BYTES

MAX_PROMPT_BYTES = MAX_INPUT_BYTES
"""An `agent` job's prompt, UTF-8: the whole inline input may be the prompt."""

MAX_TITLE_CHARS = 200
"""A report's title (data_report)."""

MAX_ERROR_MESSAGE_CHARS = 2_000
"""A job's error message, as stored in the record and published (and so synthetic's `fail`)."""

MAX_PROGRESS_MESSAGE_CHARS = 200
"""A job's progress message, as stored in the record."""

MAX_POLL_ERROR_CHARS = 1_000
"""Why the last poll of a job failed, as stored in the record."""

DEFAULT_MAX_JOBS_PER_SESSION = 32
"""Jobs running at once in one session (MAX_JOBS_PER_SESSION): a session is one microVM of
2 vCPU and 8 GB, and every CPU-bound job is a process of its own. The benchmarks run 20."""

ELLIPSIS = "\u2026"


def cap_text(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def cap_job_text(text: str, limit: int) -> str:
    """Text a job produced (an error or progress message), fit to be stored and published:
    what UTF-8 cannot carry (a lone surrogate) replaced, then cut to `limit` characters."""
    return cap_text(text.encode("utf-8", "replace").decode("utf-8"), limit)


MAX_ERROR_CODE_CHARS = 64
"""A job's error code, as stored and published: ours are short names, an agent's may be any
text."""


# Durable jobs (see docs/operations.md, "Durable jobs").

MAX_ATTEMPTS = 10
"""Most tries a submit's `max_attempts` may ask for: each lost session or retried failure of a
resumable job uses one, so a job that keeps failing still ends in bounded time and cost."""

MAX_CHECKPOINT_BYTES = 1_000_000
"""Largest checkpoint state, JSON-encoded: one S3 object read back at every resume. Bigger state
belongs in the job's own S3 objects, with the checkpoint pointing at them."""

MAX_DURABLE_RUNTIME_S = 72 * 60 * 60
"""The longest `max_runtime_s` of a resumable job: it outlives AgentCore's 8-hour session by
moving to a fresh session before the old one reaches its limit (a handoff), 8 sessions at most."""

MAX_EVENTS_PER_JOB = 500
"""The most history events kept per job: the writers bound themselves (progress milestones, one
checkpoint event a minute), and a listing stops here."""

MAX_EVENT_DETAIL_CHARS = 500
"""Each text of an event's detail (an error or progress message), as stored."""
