"""The parsing of what callers send: request payloads, the caller's headers, S3 URIs, and the
refusal of text no UTF-8 encoder accepts."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from agentjobs.limits import (
    MAX_ATTEMPTS,
    MAX_CLIENT_TOKEN_CHARS,
    MAX_DURABLE_RUNTIME_S,
    MAX_INPUT_BYTES,
    MAX_JOB_ID_CHARS,
    MAX_OWNER_CHARS,
    MAX_PROMPT_BYTES,
    MAX_S3_BUCKET_CHARS,
    MAX_S3_KEY_BYTES,
    MAX_SESSION_ID_CHARS,
    MIN_S3_BUCKET_CHARS,
    MIN_SESSION_ID_CHARS,
    cap_text,
)
from agentjobs.protocol import (
    JOB_ID_PATTERN,
    MAX_RUNTIME_S,
    PING_METHOD,
    SESSION_ID_HEADER,
    USER_ID_HEADER,
    Action,
    Caller,
    ErrorCode,
    JobQuery,
    PingRequest,
    ProtocolError,
    S3Location,
    SubmitRequest,
    describe_value,
    encode_json,
    job_name_problem,
    json_type_name,
)

_PING_FIELDS = frozenset({"method", "payload"})
_SUBMIT_FIELDS = frozenset(
    {"action", "kind", "input", "client_token", "max_runtime_s", "max_attempts"}
)
_QUERY_FIELDS = frozenset({"action", "job_id"})


def parse_request(payload: object) -> SubmitRequest | JobQuery | PingRequest:
    """Validate a decoded payload; raise ProtocolError saying what is wrong and what is expected."""
    if not isinstance(payload, dict):
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            'expected a JSON object such as {"action": "submit", ...}; '
            f"got {json_type_name(payload)}",
        )
    # First, before any field is read, used or logged: JSON may carry lone surrogates
    # ("\ud800"), which no UTF-8 encoder (the answer's, DynamoDB's, a log file's) accepts.
    _refuse_unencodable(payload)
    if "action" not in payload and "method" in payload:
        return _parse_ping(payload)
    if "action" not in payload:
        return _parse_prompt(payload)
    action = payload["action"]
    if not isinstance(action, str) or action not in Action.__members__.values():
        choices = ", ".join(a.value for a in Action)
        raise ProtocolError(
            ErrorCode.UNKNOWN_ACTION,
            f"'action' must be one of {choices}; got {describe_value(action)}",
        )
    if action == Action.SUBMIT:
        return _parse_submit(payload)
    _reject_unknown_fields(payload, _QUERY_FIELDS, action)
    job_id = payload.get("job_id")
    if job_id is not None:
        job_id = _require_text("job_id", job_id, MAX_JOB_ID_CHARS)
        if not JOB_ID_PATTERN.fullmatch(job_id):
            raise ProtocolError(
                ErrorCode.INVALID_REQUEST,
                "'job_id' must be a job id as submit answered it (32 lowercase hexadecimal "
                f"characters); got {describe_value(job_id)}",
            )
    if job_id is None and action in (Action.RESUME, Action.SUSPEND):
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST, f"'{action}' needs the 'job_id' of the job to {action}"
        )
    return JobQuery(action=Action(action), job_id=job_id)


def _parse_ping(payload: dict[str, Any]) -> PingRequest:
    if payload["method"] != PING_METHOD:
        raise ProtocolError(
            ErrorCode.UNKNOWN_ACTION,
            f"'method' must be \"{PING_METHOD}\" (or send an 'action': submit, status, result or "
            f"cancel); got {describe_value(payload['method'])}",
        )
    _reject_unknown_fields(payload, _PING_FIELDS, "ping")
    if "payload" in payload and not isinstance(payload["payload"], dict):
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"'payload' of a ping must be a JSON object; got {json_type_name(payload['payload'])}",
        )
    return PingRequest()


def parse_caller(session_id: str | None, owner: str | None) -> Caller:
    """Validate the session and user id headers (an empty one counts as absent); raise
    ProtocolError(INVALID_REQUEST) naming the header and its limit."""
    session = session_id or None
    if session is not None:
        if not MIN_SESSION_ID_CHARS <= len(session) <= MAX_SESSION_ID_CHARS:
            raise ProtocolError(
                ErrorCode.INVALID_REQUEST,
                f"the session id header ({SESSION_ID_HEADER}) must be {MIN_SESSION_ID_CHARS} "
                f"to {MAX_SESSION_ID_CHARS} characters, as AgentCore allows; got {len(session)}",
            )
        _refuse_control_characters(session, f"the session id header ({SESSION_ID_HEADER})")
    user = owner or None
    if user is not None:
        if len(user) > MAX_OWNER_CHARS:
            raise ProtocolError(
                ErrorCode.INVALID_REQUEST,
                f"the user id header ({USER_ID_HEADER}) must be at most {MAX_OWNER_CHARS} "
                f"characters; got {len(user)}",
            )
        _refuse_control_characters(user, f"the user id header ({USER_ID_HEADER})")
    return Caller(session_id=session, owner=user)


_BUCKET_PATTERN = re.compile(r"[a-z0-9.-]+")
_IP_ADDRESS_PATTERN = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def parse_s3_uri(uri: str) -> S3Location:
    """The bucket and key of an s3:// URI that S3 would accept (general purpose bucket naming
    rules, a key of at most MAX_S3_KEY_BYTES). Keys with control characters or '.'/'..'
    segments are refused too: a key must never read as a path to somewhere else. Raises
    ValueError saying what is wrong, without repeating the URI."""
    if not uri.startswith("s3://"):
        raise ValueError("must be an s3:// URI (s3://bucket/key)")
    bucket, slash, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError("names no bucket (expected s3://bucket/key)")
    if not slash or not key:
        raise ValueError("names no object key (expected s3://bucket/key)")
    _check_bucket_name(bucket)
    try:
        key_bytes = len(key.encode())
    except UnicodeEncodeError:
        raise ValueError("has an object key that is not UTF-8 text") from None
    if key_bytes > MAX_S3_KEY_BYTES:
        raise ValueError(
            f"has an object key of {key_bytes} bytes; S3 allows at most {MAX_S3_KEY_BYTES} bytes"
        )
    if _has_control_characters(key):
        raise ValueError("has an object key with control characters")
    if any(segment in {".", ".."} for segment in key.split("/")):
        raise ValueError("has an object key with '.' or '..' segments")
    return S3Location(bucket=bucket, key=key)


def _check_bucket_name(bucket: str) -> None:
    if not MIN_S3_BUCKET_CHARS <= len(bucket) <= MAX_S3_BUCKET_CHARS:
        raise ValueError(
            f"has a bucket name of {len(bucket)} characters; S3 bucket names are "
            f"{MIN_S3_BUCKET_CHARS} to {MAX_S3_BUCKET_CHARS} characters"
        )
    if not _BUCKET_PATTERN.fullmatch(bucket):
        raise ValueError(
            "has a bucket name with characters S3 does not allow: only lowercase letters, "
            "digits, '.' and '-'"
        )
    if not (bucket[0].isalnum() and bucket[-1].isalnum()):
        raise ValueError("has a bucket name that does not begin and end with a letter or digit")
    if ".." in bucket:
        raise ValueError("has a bucket name with two adjacent periods, which S3 does not allow")
    if _IP_ADDRESS_PATTERN.fullmatch(bucket):
        raise ValueError("has a bucket name formatted as an IP address, which S3 does not allow")
    if bucket.startswith(_RESERVED_BUCKET_PREFIXES) or bucket.endswith(_RESERVED_BUCKET_SUFFIXES):
        raise ValueError("has a bucket name with a prefix or suffix S3 keeps reserved")


def _parse_prompt(payload: dict[str, Any]) -> SubmitRequest:
    if "prompt" not in payload:
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            "expected 'action' (submit, status, result or cancel) or a 'prompt' string",
        )
    _reject_unknown_fields(payload, frozenset({"prompt"}), "prompt")
    prompt = _require_text("prompt", payload["prompt"], MAX_PROMPT_BYTES)
    if len(prompt.encode()) > MAX_PROMPT_BYTES:
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"'prompt' must be at most {MAX_PROMPT_BYTES} bytes (UTF-8); pass a longer task "
            "as a data_report csv_uri or split it",
        )
    return SubmitRequest(kind=None, input={"prompt": prompt})


def _parse_submit(payload: dict[str, Any]) -> SubmitRequest:
    _reject_unknown_fields(payload, _SUBMIT_FIELDS, "submit")
    kind = payload.get("kind")
    if kind is not None:
        problem = job_name_problem(kind)
        if problem is not None:
            raise ProtocolError(ErrorCode.INVALID_REQUEST, f"'kind': {problem}")
    job_input = payload.get("input", {})
    if not isinstance(job_input, dict):
        raise ProtocolError(
            ErrorCode.INVALID_INPUT,
            f"'input' must be a JSON object; got {json_type_name(job_input)}",
        )
    try:
        size = len(encode_json(job_input).encode())
    except (TypeError, ValueError) as exc:
        raise ProtocolError(ErrorCode.INVALID_INPUT, "'input' must be plain JSON") from exc
    if size > MAX_INPUT_BYTES:
        raise ProtocolError(
            ErrorCode.INPUT_TOO_LARGE,
            f"'input' is {size} bytes; at most {MAX_INPUT_BYTES} are accepted inline, "
            "pass larger data as an s3:// URI",
        )
    token = payload.get("client_token")
    if token is not None:
        token = _require_text("client_token", token, MAX_CLIENT_TOKEN_CHARS)
    max_runtime = payload.get("max_runtime_s")
    if max_runtime is not None:
        max_runtime = _require_seconds(
            "max_runtime_s",
            max_runtime,
            MAX_DURABLE_RUNTIME_S,
            note=f" ({MAX_RUNTIME_S} for a job not declared resumable)",
        )
    return SubmitRequest(
        kind=kind,
        input=job_input,
        client_token=token,
        max_runtime_s=max_runtime,
        max_attempts=_max_attempts(payload.get("max_attempts", 1)),
    )


def _max_attempts(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPTS:
        raise ProtocolError(
            ErrorCode.INVALID_INPUT,
            f"'max_attempts' must be a whole number from 1 to {MAX_ATTEMPTS} (more than 1 only "
            f"for a job declared resumable); got {_shown_number(value)}",
        )
    return value


def _refuse_unencodable(payload: dict[str, Any]) -> None:
    """Refuse a payload holding text UTF-8 cannot carry, or nesting too deep to encode,
    naming where. One fast encode for the common case; the walk only on failure."""
    try:
        json.dumps(payload, ensure_ascii=False, check_circular=False).encode()
    except UnicodeEncodeError:
        pass
    except RecursionError:
        _refuse_deep(payload)
    else:
        return
    for name, value in payload.items():
        if not _encodes(str(name)):
            raise ProtocolError(
                ErrorCode.INVALID_REQUEST,
                "a field name holds text that is not valid UTF-8 (such as a lone surrogate, "
                "\\ud800); send Unicode text only",
            )
        where = _unencodable_path(value, str(name))
        if where is not None:
            path, in_name = where
            code = ErrorCode.INVALID_INPUT if name == "input" else ErrorCode.INVALID_REQUEST
            what = f"a field name in '{path}'" if in_name else f"'{path}'"
            raise ProtocolError(
                code,
                f"{what} holds text that is not valid UTF-8 (such as a lone surrogate, "
                "\\ud800); send Unicode text only",
            )


def _refuse_deep(payload: dict[str, Any]) -> None:
    for name, value in payload.items():
        try:
            json.dumps(value, check_circular=False)
        except RecursionError:
            code = ErrorCode.INVALID_INPUT if name == "input" else ErrorCode.INVALID_REQUEST
            shown = json.dumps(cap_text(str(name), 40))
            raise ProtocolError(
                code,
                f"{shown} is nested too deeply; a few levels of objects and arrays are expected",
            ) from None


def _unencodable_path(value: object, root: str) -> tuple[str, bool] | None:
    """The path of the first text in `value` that is not UTF-8, and whether it is a field
    name; None when all of it encodes. Iterative: `value` may be nested deeply."""
    stack: list[tuple[str, object]] = [(root, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not _encodes(item):
                return _shown_path(path), False
        elif isinstance(item, dict):
            children = list(item.items())
            for key, _ in children:
                if not _encodes(str(key)):
                    return _shown_path(path), True
            stack.extend((_child_path(path, str(key)), inner) for key, inner in reversed(children))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", inner) for i, inner in reversed(list(enumerate(item))))
    return None


def _child_path(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(cap_text(key, 40))}]"


def _shown_path(path: str) -> str:
    return cap_text(path, 120)


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _has_control_characters(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def _refuse_control_characters(value: str, what: str) -> None:
    if _has_control_characters(value) or not _encodes(value):
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"{what} must be printable text, without control characters",
        )


def _reject_unknown_fields(payload: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(str(k) for k in payload if k not in allowed)
    if unknown:
        shown = ", ".join(cap_text(k, 40) for k in unknown[:10])
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"unknown field(s) {shown} for {what}; expected only {', '.join(sorted(allowed))}",
        )


def _require_text(name: str, value: object, max_chars: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"'{name}' must be a non-empty string; got {describe_value(value)}",
        )
    if len(value) > max_chars:
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST, f"'{name}' must be at most {max_chars} characters"
        )
    return value


def _require_seconds(name: str, value: object, maximum: float, note: str = "") -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= maximum
    ):
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"'{name}' must be a number of seconds above 0 and at most {maximum:g}{note}; "
            f"got {describe_value(value)}",
        )
    return float(value)


def _shown_number(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value) if math.isfinite(value) else str(value)
    return describe_value(value)
