"""API Gateway HTTP API payload-2.0 events, shaped like the ones AWS sends (see the AWS docs'
"Working with AWS Lambda proxy integrations for HTTP APIs" example event)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools.utilities.typing import LambdaContext


def http_event(
    method: str,
    path: str,
    *,
    user: str | None = "alice",
    groups: tuple[str, ...] = (),
    body: Any = None,
    raw_body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    route_key: str | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    all_headers = {
        "accept": "application/json",
        "content-length": "0",
        "host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "user-agent": "curl/8.5.0",
        "x-amzn-trace-id": "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    encoded = False
    text: str | None = None
    if body is not None:
        text = json.dumps(body)
        all_headers["content-type"] = "application/json"
    elif isinstance(raw_body, bytes):
        text, encoded = base64.b64encode(raw_body).decode(), True
    elif raw_body is not None:
        text = raw_body
    if text is not None:
        all_headers["content-length"] = str(len(text))
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "abc123",
        "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
        "domainPrefix": "abc123",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.7",
            "userAgent": "curl/8.5.0",
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route_key or f"{method} {path}",
        "stage": "$default",
        "time": "22/Nov/2026:22:43:10 +0000",
        "timeEpoch": 1795387390000,
    }
    if user is not None:
        # The JWT authorizer passes claims as strings; a list claim arrives as "[a b]".
        request_context["authorizer"] = {
            "jwt": {
                "claims": {
                    "sub": user,
                    "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_example",
                    "aud": "example-client",
                    "exp": "1795390990",
                    "iat": "1795387390",
                    "token_use": "id",
                    **({"cognito:groups": "[" + " ".join(groups) + "]"} if groups else {}),
                },
                "scopes": None,
            }
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": request_context["routeKey"],
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": all_headers,
        "requestContext": request_context,
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if path_parameters:
        event["pathParameters"] = path_parameters
    if text is not None:
        event["body"] = text
    return event


class FakeContext(LambdaContext):
    """A Lambda context like the runtime's (Powertools' typed view of it)."""

    _function_name = "tasks-api"
    _function_version = "$LATEST"
    _invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:tasks-api"
    _memory_limit_in_mb = 1024
    _aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    _log_group_name = "/aws/lambda/tasks-api"
    _log_stream_name = "2026/11/22/[$LATEST]abcdef"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000
