"""Responses: what API Gateway makes of a payload 2.0 Lambda result (`map_result`), and the
responses the gateway answers itself (`gateway_error`: `{"message":"..."}`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs


class BadLambdaResponse(Exception):
    """The function's result is not something API Gateway can turn into HTTP."""


@attrs.frozen
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    note: str = ""  # why the gateway refused, for the log line only
    route_key: str | None = None  # the route that answered (None: the gateway itself did)


def gateway_error(status: int, message: str, *headers: tuple[str, str]) -> HttpResponse:
    """A response API Gateway itself generates: `{"message":"..."}`."""
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return HttpResponse(status, (("content-type", "application/json"), *headers), body)


def _lambda_default(value: Any) -> Any:
    # The Python runtime serializes Decimal as a float (awslambdaric's decimal_serializer).
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _response_headers(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    raw_headers = payload.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise BadLambdaResponse("headers is not an object")
    for name, value in raw_headers.items():
        if not isinstance(value, str):
            raise BadLambdaResponse(f"header {name!r} is not a string")
        headers.append((name.lower(), value))
    cookies = payload.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise BadLambdaResponse("cookies is not a list of strings")
    return headers + [("set-cookie", cookie) for cookie in cookies]


def map_result(result: Any) -> HttpResponse:
    """The HTTP response API Gateway makes of a payload 2.0 Lambda result."""
    try:  # the result crosses the wire as JSON, as from a real Lambda
        payload = json.loads(json.dumps(result, default=_lambda_default))
    except (TypeError, ValueError) as error:
        raise BadLambdaResponse(f"the result is not JSON: {error}") from None
    if not (isinstance(payload, dict) and "statusCode" in payload):
        # No statusCode: 200, application/json, the result itself as the body.
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return HttpResponse(200, (("content-type", "application/json"),), text.encode())

    status = payload["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadLambdaResponse(f"statusCode {status!r} is not an HTTP status")
    headers = _response_headers(payload)
    body_text = payload.get("body")
    if body_text is None:
        body_text = ""
    if not isinstance(body_text, str):
        raise BadLambdaResponse("body is not a string")
    if payload.get("isBase64Encoded") is True:
        try:
            body = base64.b64decode(body_text, validate=True)
        except (binascii.Error, ValueError):
            raise BadLambdaResponse("body is not valid base64") from None
    else:
        body = body_text.encode("utf-8")
    if body and not any(name == "content-type" for name, _ in headers):
        # API Gateway sniffs a type when the function names none.
        try:
            body.decode("utf-8")
            headers.append(("content-type", "text/plain; charset=utf-8"))
        except UnicodeDecodeError:
            headers.append(("content-type", "application/octet-stream"))
    return HttpResponse(status, tuple(headers), body)
