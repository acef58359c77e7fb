"""The AWS errors of the bedrock-agentcore data plane, as boto3 expects them on the wire."""

# ruff: noqa: N818 - the class names are the AWS error codes boto3 maps to its exceptions

from __future__ import annotations

from typing import Any, ClassVar


class AgentCoreError(Exception):
    """An error answered with its HTTP status, `x-amzn-ErrorType` header and `{"message"}` body."""

    code: ClassVar[str] = "InternalServerException"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON body; botocore reads `message` into the exception's response."""
        return {"message": self.message}


class ValidationException(AgentCoreError):
    """The request broke a constraint of the service model (400)."""

    code = "ValidationException"
    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def body(self) -> dict[str, Any]:
        # `reason` is a required member of the modelled shape; real answers carry it.
        body: dict[str, Any] = {"message": self.message, "reason": "FieldValidationFailed"}
        if self.field is not None:
            body["fieldList"] = [{"name": self.field, "message": self.message}]
        return body


class UnauthorizedException(AgentCoreError):
    """A missing or invalid OAuth bearer token (401)."""

    code = "UnauthorizedException"
    status = 401


class ServiceQuotaExceededException(AgentCoreError):
    """The request would exceed a service quota (402)."""

    code = "ServiceQuotaExceededException"
    status = 402


class AccessDeniedException(AgentCoreError):
    """The caller lacks permission (403)."""

    code = "AccessDeniedException"
    status = 403


class ResourceNotFoundException(AgentCoreError):
    """The runtime or session does not exist (404)."""

    code = "ResourceNotFoundException"
    status = 404


class ConflictException(AgentCoreError):
    """The request conflicts with the resource's current state (409)."""

    code = "ConflictException"
    status = 409


class RetryableConflictException(AgentCoreError):
    """The session is being created or torn down, or (busy policy `reject`) is busy (409)."""

    code = "RetryableConflictException"
    status = 409


class RuntimeClientError(AgentCoreError):
    """The agent answered 4xx/5xx or failed to start; the caller never sees its body (424)."""

    code = "RuntimeClientError"
    status = 424


class ThrottlingException(AgentCoreError):
    """Too many requests (429)."""

    code = "ThrottlingException"
    status = 429


class InternalServerException(AgentCoreError):
    """The service itself failed (500)."""

    code = "InternalServerException"
    status = 500


class UnknownOperationException(AgentCoreError):
    """A path or method that names no operation; AWS front ends answer this, not a model error."""

    code = "UnknownOperationException"
    status = 404


MODELED_ERRORS: dict[str, type[AgentCoreError]] = {
    cls.code: cls
    for cls in (
        ValidationException,
        UnauthorizedException,
        ServiceQuotaExceededException,
        AccessDeniedException,
        ResourceNotFoundException,
        ConflictException,
        RetryableConflictException,
        RuntimeClientError,
        ThrottlingException,
        InternalServerException,
    )
}


def agent_error_message(status: int) -> str:
    """AWS's text for an agent that answered with an HTTP error status."""
    return (
        f"Received error ({status}) from runtime. "
        "Please check your CloudWatch logs for more information."
    )


def start_timeout_message(timeout_s: float) -> str:
    """AWS's text for an agent that did not answer /ping in time."""
    return (
        "Runtime initialization time exceeded. "
        f"Please make sure that initialization completes in {timeout_s:g}s."
    )


SESSION_BUSY_MESSAGE = "Session operation in progress, please retry"
