"""Lambda handlers for the gateway tests: each shows one way a function can answer."""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal
from typing import Any

PNG = b"\x89PNG\r\n\x1a\n\x00\xff\xfe"


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The event and the context it was given, as a JSON body."""
    body = {
        "event": event,
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "aws_request_id": context.aws_request_id,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "log_group_name": context.log_group_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Echo": "yes"},
        "body": json.dumps(body),
    }


def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("boom: the handler failed")


def no_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """No statusCode: API Gateway makes it a 200 JSON response. Decimal as the runtime does."""
    return {"hello": "world", "amount": Decimal("1.5")}


def plain_string(event: dict[str, Any], context: Any) -> str:
    return "Hello from Lambda!"


def binary(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 201,
        "headers": {"content-type": "image/png"},
        "cookies": ["session=abc123; Path=/; HttpOnly", "theme=dark"],
        "isBase64Encoded": True,
        "body": base64.b64encode(PNG).decode(),
    }


def own_cors(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """CORS headers of its own, which API Gateway drops when the API configures CORS."""
    return {
        "statusCode": 200,
        "headers": {
            "access-control-allow-origin": "*",
            "access-control-allow-credentials": "true",
            "etag": '"3"',
            "content-type": "application/json",
        },
        "body": "{}",
    }


def untyped(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": "plain words"}


def bad_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": "OK", "body": "?"}


def not_json(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": {1, 2, 3}}  # a set: not JSON


def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(1.3)
    return {"statusCode": 200, "body": "too late"}
