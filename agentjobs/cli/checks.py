"""One preflight check's outcome, and how an AWS failure during a check reads to a person."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from agentjobs.cli.errors import one_line

ClientFactory = Callable[[str], Any]
"""Service name -> a boto3 client of it in the region being checked."""

ACCESS_DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
)
CREDENTIAL_ERRORS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
    }
)
NOT_FOUND = frozenset({"ResourceNotFoundException", "NotFoundException", "NotFound"})


@dataclass(frozen=True)
class CheckResult:
    """One line of the doctor's report; `fix` says what to do when the check missed."""

    check: str
    ok: bool
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `--json` form: {check, ok, detail, fix}."""
        return {"check": self.check, "ok": self.ok, "detail": self.detail, "fix": self.fix}


def passed(check: str, detail: str) -> CheckResult:
    """A check that found what it looked for."""
    return CheckResult(check, True, detail)


def missed(check: str, detail: str, fix: str) -> CheckResult:
    """A check that found a gap, with the fix."""
    return CheckResult(check, False, detail, fix)


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError ('' when the answer had none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def call_failed(check: str, exc: ClientError | BotoCoreError, action: str) -> CheckResult:
    """A check that could not make its AWS call `action` (e.g. 'bedrock:GetFoundationModel')."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return missed(check, f"no AWS credentials for {action}", CREDENTIALS_FIX)
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        endpoint = exc.kwargs.get("endpoint_url", "the endpoint")
        return missed(
            check,
            f"cannot reach {endpoint} for {action}",
            "check the network, a proxy (HTTPS_PROXY) or AWS_ENDPOINT_URL, then run doctor again",
        )
    if isinstance(exc, ClientError):
        code = error_code(exc) or "an error"
        if code in ACCESS_DENIED:
            return missed(
                check,
                f"this caller may not call {action} ({code})",
                f"run doctor as the identity that deploys, or grant it {action}",
            )
        if code in CREDENTIAL_ERRORS:
            return missed(check, f"AWS refused the credentials ({code})", CREDENTIALS_FIX)
        return missed(
            check,
            f"{action} answered {code}{_message_of(exc)}",
            "run doctor again; if it persists, check the service's health in the AWS Health "
            "Dashboard",
        )
    return missed(
        check, f"{action} failed: {one_line(str(exc), 200)}", "run doctor again in a moment"
    )


CREDENTIALS_FIX = (
    "configure AWS credentials for the account you deploy to: `aws configure`, "
    "AWS_PROFILE=NAME (then `aws sso login` for SSO), or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY"
)


def _message_of(exc: ClientError) -> str:
    message = str(exc.response.get("Error", {}).get("Message", "") or "")
    # Some endpoints answer an HTML error page: nothing in it helps a person.
    if not message or message.lstrip().startswith("<"):
        return ""
    return f": {one_line(message, 200)}"
