"""Payload format 2.0: the event API Gateway's HTTP API sends a Lambda for a request.

`build_event` is the one builder: the gateway calls it for every request it routes to a
function, and `http_event` (for calling an HTTP handler directly: the handler tests, the
benchmarks) calls it for a request that a client sent and the JWT authorizer admitted. Claims
are stringified as the authorizer hands them over (`stringify_claim`), bodies are text or
base64 by content type (`encode_body`), request ids and times are shaped like AWS's.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import attrs

from local_platform.lambda_runtime import ACCOUNT_ID

API_ID = "local"
DOMAIN_NAME = "127.0.0.1"
STAGE = "$default"
# Connection-level headers a proxy consumes rather than forwards (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding"}
    | {"upgrade"}
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXTUAL = re.compile(
    r"^(?:text/[^;]+|application/(?:json|xml|javascript|ecmascript|x-javascript|graphql"
    r"|[^;]+\+json|[^;]+\+xml))$"
)


def stringify_claim(value: Any) -> str:
    """A claim as API Gateway's JWT authorizer hands it to the Lambda: always a string.

    Arrays print as Go prints them, `[approvers admins]` (brackets, space-separated); numbers
    as their JSON text (`1795390990`); booleans `true`/`false`; objects `map[k:v ...]`; null
    `<nil>`.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        value = int(value)
    if isinstance(value, list):
        return "[" + " ".join(stringify_claim(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{k}:{stringify_claim(value[k])}" for k in sorted(value))
        return "map[" + " ".join(items) + "]"
    return "<nil>" if value is None else str(value)


def is_textual(content_type: str | None) -> bool:
    if not content_type:
        return False
    return bool(_TEXTUAL.match(content_type.split(";")[0].strip().lower()))


def encode_body(body: bytes, content_type: str | None) -> tuple[str, bool]:
    """(body, isBase64Encoded): text as is; binary, unknown or non-UTF-8 content as base64."""
    if is_textual(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def request_time(epoch_ms: int) -> str:
    """`22/Nov/2026:22:43:10 +0000`, whatever the locale."""
    t = time.gmtime(epoch_ms / 1000)
    day = f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}"
    return f"{day}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def new_request_id() -> str:
    """Shaped like API Gateway's: 16 base64 characters ending in `=` (e.g. ATfSmjLgPHcESJw=)."""
    return base64.b64encode(secrets.token_bytes(11)).decode("ascii")


@attrs.frozen(kw_only=True)
class IncomingRequest:
    method: str
    raw_path: bytes
    path: str
    query_string: str
    headers: tuple[tuple[str, str], ...]  # lower-case names, in arrival order
    source_ip: str
    server_port: int
    scheme: str

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        return ",".join(values) if values else None


def build_event(
    request: IncomingRequest,
    body: bytes,
    *,
    route_key: str,
    path_parameters: Mapping[str, str],
    claims: Mapping[str, Any] | None,
    request_id: str,
    epoch_ms: int,
    domain_name: str = DOMAIN_NAME,
) -> dict[str, Any]:
    """The payload 2.0 event API Gateway sends the Lambda for this request."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        if name == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
        elif name not in HOP_BY_HOP:
            headers[name] = f"{headers[name]},{value}" if name in headers else value
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = (
        f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip
    )
    headers["x-forwarded-port"] = str(request.server_port)
    headers["x-forwarded-proto"] = request.scheme
    headers.setdefault("x-amzn-trace-id", f"Root=1-{epoch_ms // 1000:08x}-{secrets.token_hex(12)}")
    if body and "content-length" not in headers:
        headers["content-length"] = str(len(body))

    query: dict[str, str] = {}
    for key, value in parse_qsl(request.query_string, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value

    http = {
        "method": request.method,
        "path": request.path,
        "protocol": "HTTP/1.1",
        "sourceIp": request.source_ip,
        "userAgent": headers.get("user-agent", ""),
    }
    context: dict[str, Any] = {"accountId": ACCOUNT_ID, "apiId": API_ID}
    if claims is not None:
        context["authorizer"] = {
            "jwt": {"claims": {k: stringify_claim(v) for k, v in claims.items()}, "scopes": None}
        }
    context |= {
        "domainName": domain_name,
        "domainPrefix": domain_name.split(".", maxsplit=1)[0],
        "http": http,
        "requestId": request_id,
        "routeKey": route_key,
        "stage": STAGE,
        "time": request_time(epoch_ms),
        "timeEpoch": epoch_ms,
    }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = context
    encoded = False
    if body:
        event["body"], encoded = encode_body(body, headers.get("content-type"))
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    event["isBase64Encoded"] = encoded
    return event


# --- a request as a client sends it, for calling a handler directly ------------------------

# The client `http_event` plays: curl, calling the API (id API_ID) on its execute-api domain,
# with an ID token issued at EXAMPLE_EPOCH_MS (22/Nov/2026:22:43:10 +0000) for an hour.
EXAMPLE_DOMAIN = f"{API_ID}.execute-api.eu-west-1.amazonaws.com"
EXAMPLE_SOURCE_IP = "203.0.113.7"
EXAMPLE_USER_AGENT = "curl/8.5.0"
EXAMPLE_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_example"
EXAMPLE_AUDIENCE = "example-client"
EXAMPLE_EPOCH_MS = 1795387390000


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
    """The event `build_event` makes of `method path` sent by the example client.

    `path` is the path as the Lambda sees it (already decoded); `user` the verified token's
    subject (None: an unauthorized route, no `authorizer`), `groups` its `cognito:groups`;
    `body` is sent as JSON (content-type application/json unless `headers` say otherwise),
    `raw_body` as is (a str as UTF-8; lone surrogates as the bytes they would be, which are not
    UTF-8). Whether the body arrives as text or base64 is the gateway's rule (`encode_body`).
    `headers` add to or replace the client's (accept, host, user-agent); `route_key` defaults
    to `METHOD path`.
    """
    sent: dict[str, str] = {
        "accept": "application/json",
        "host": EXAMPLE_DOMAIN,
        "user-agent": EXAMPLE_USER_AGENT,
    }
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode("utf-8")
        sent["content-type"] = "application/json"
    elif isinstance(raw_body, bytes):
        payload = raw_body
    elif raw_body is not None:
        payload = raw_body.encode("utf-8", "surrogatepass")
    sent |= {name.lower(): value for name, value in (headers or {}).items()}
    request = IncomingRequest(
        method=method,
        raw_path=path.encode("utf-8"),
        path=path,
        query_string=urlencode(query or {}),
        headers=tuple(sent.items()),
        source_ip=EXAMPLE_SOURCE_IP,
        server_port=443,
        scheme="https",
    )
    claims: dict[str, Any] | None = None
    if user is not None:
        issued = EXAMPLE_EPOCH_MS // 1000
        claims = {
            "sub": user,
            "iss": EXAMPLE_ISSUER,
            "aud": EXAMPLE_AUDIENCE,
            "exp": issued + 3600,
            "iat": issued,
            "token_use": "id",
            **({"cognito:groups": list(groups)} if groups else {}),
        }
    return build_event(
        request,
        payload,
        route_key=route_key or f"{method} {path}",
        path_parameters=path_parameters or {},
        claims=claims,
        request_id=new_request_id(),
        epoch_ms=EXAMPLE_EPOCH_MS,
        domain_name=EXAMPLE_DOMAIN,
    )
