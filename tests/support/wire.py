"""HTTP answers made up for botocore's `before-send` hook, shaped as each service sends them."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse


class RawBody(io.BytesIO):
    """An HTTP body as botocore reads it: whole (`stream`, for errors) or in parts (`read`)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def dynamodb_error(url: str, code: str, message: str, status: int = 400) -> AWSResponse:
    """DynamoDB's answer refusing a request (JSON protocol)."""
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
    return AWSResponse(
        url, status, {"Content-Type": "application/x-amz-json-1.0"}, RawBody(body.encode())
    )


def sns_error(url: str, code: str, message: str, status: int = 400) -> AWSResponse:
    """SNS's answer refusing a request (query protocol)."""
    xml = (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>test</RequestId></ErrorResponse>"
    )
    return AWSResponse(url, status, {"Content-Type": "text/xml"}, RawBody(xml.encode()))


def s3_error(url: str, code: str, message: str, status: int) -> AWSResponse:
    """S3's answer refusing a request (REST-XML protocol)."""
    xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return AWSResponse(url, status, {"Content-Type": "application/xml"}, RawBody(xml.encode()))


def agentcore_answer(url: str, status: int, body: dict[str, Any]) -> AWSResponse:
    """AgentCore's answer to an invocation (a JSON body; an error names its type)."""
    headers = {"Content-Type": "application/json"}
    if status >= 300:
        headers["x-amzn-ErrorType"] = str(body.get("__type", "InternalServerException"))
    return AWSResponse(url, status, headers, RawBody(json.dumps(body).encode()))
