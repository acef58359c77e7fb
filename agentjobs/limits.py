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

MAX_S3_URI_CHARS = len("s3://") + 63 + 1 + 1024
"""S3 allows bucket names of 3 to 63 characters and keys of at most 1,024 bytes."""

MAX_ERROR_MESSAGE_CHARS = 2_000
"""A job's error message, as stored in the record and published."""

MAX_PROGRESS_MESSAGE_CHARS = 200
"""A job's progress message, as stored in the record."""

MAX_POLL_ERROR_CHARS = 1_000
"""Why the last poll of a job failed, as stored in the record."""

ELLIPSIS = "\u2026"


def cap_text(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


MAX_ERROR_CODE_CHARS = 64
"""A job's error code, as stored and published: ours are short names, an agent's may be any
text."""
