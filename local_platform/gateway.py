"""The local API gateway: API Gateway HTTP API (payload format 2.0) with a JWT authorizer.

`build_app(functions, config, issuer, invoke)` returns an ASGI app that does, in this order,
what the `$default` stage of the real HTTP API does for a request, so the Lambda handler that
runs on AWS runs here unchanged:

1. `GET <issuer path>/.well-known/jwks.json` (and `openid-configuration`) serve the dev
   issuer's public keys; not an API Gateway feature, but it lets curl demos verify tokens.
2. Throttling: one token bucket for the stage (rate `throttle_rate_limit` per second, bucket
   size `throttle_burst_limit`); over it, 429 `{"message":"Too Many Requests"}`.
3. CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here
   with 204; no authorizer, no Lambda.
4. The request path is percent-decoded as HTTP APIs do (see `decode_path`); a path that does
   not decode is 400 `{"message":"Bad Request"}`.
5. Bodies over API Gateway's own 10 MB quota are 413 `{"message":"Request Entity Too
   Large"}`; smaller limits (`max_body_bytes`) are the handler's business, not the gateway's.
6. Route selection from the manifest (most specific route wins); no match goes to `$default`,
   the first function with routes, which answers 404/405 itself.
7. The JWT authorizer (`DevIssuer.verify`). Failures are 401 with the exact body API Gateway
   sends, `{"message":"Unauthorized"}` (plain JSON, *not* problem+json: it is the gateway,
   not our handler, answering) and a `www-authenticate` header in AWS's format.
8. The Lambda is invoked with a payload 2.0 event and a Lambda-like context; its result is
   mapped to HTTP as API Gateway maps it. A handler that raises, times out or returns what
   API Gateway cannot read is 500 `{"message":"Internal Server Error"}`.

CORS headers (for an allowed Origin) and `apigw-requestid` are added to every response,
including the gateway's own errors. Each request is logged as one line: method, path, status,
milliseconds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_to_bytes

import anyio
import anyio.to_thread
import attrs
from starlette.types import Receive, Scope, Send

from local_platform.auth import DevIssuer, Unauthorized
from local_platform.lambda_runtime import ACCOUNT_ID, Invoke, invoke_handler, lambda_context
from local_platform.sandboxes import SandboxTimeout
from stack.config import StackConfig
from stack.manifest import Function, Route

logger = logging.getLogger(__name__)


API_ID = "local"
DOMAIN_NAME = "127.0.0.1"
STAGE = "$default"
DEFAULT_ROUTE_KEY = "$default"
# API Gateway's payload quota ("10 MB"; read as MiB here).
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# API Gateway's own integration timeout (HTTP APIs: at most 30 s).
INTEGRATION_TIMEOUT_S = 30.0
CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_ALLOW_HEADERS = ("authorization", "content-type", "idempotency-key", "if-match")
CORS_EXPOSE_HEADERS = ("etag", "location", "retry-after")
CORS_MAX_AGE_S = 600
# Connection-level headers a proxy consumes rather than forwards (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding"}
    | {"upgrade"}
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_TEXTUAL = re.compile(
    r"^(?:text/[^;]+|application/(?:json|xml|javascript|ecmascript|x-javascript|graphql"
    r"|[^;]+\+json|[^;]+\+xml))$"
)


# --- routes -----------------------------------------------------------------------------------


SegmentKind = Literal["literal", "param", "greedy"]
_RANK: dict[SegmentKind, int] = {"literal": 0, "param": 1, "greedy": 2}


@attrs.frozen
class CompiledRoute:
    route: Route
    function: Function
    segments: tuple[tuple[SegmentKind, str], ...]

    @classmethod
    def compile(cls, route: Route, function: Function) -> CompiledRoute:
        segments: list[tuple[SegmentKind, str]] = []
        for part in route.path.split("/")[1:]:
            if part.startswith("{") and part.endswith("+}"):
                segments.append(("greedy", part[1:-2]))
            elif part.startswith("{") and part.endswith("}"):
                segments.append(("param", part[1:-1]))
            else:
                segments.append(("literal", part))
        return cls(route, function, tuple(segments))

    @property
    def specificity(self) -> tuple[int, ...]:
        """Smaller is more specific: literal segments beat parameters beat greedy ones."""
        ranks = tuple(_RANK[kind] for kind, _ in self.segments)
        return (*ranks, 1 if str(self.route.method) == "ANY" else 0)

    def match(self, method: str, parts: Sequence[str]) -> dict[str, str] | None:
        """The path parameters if `method parts` matches this route, else None."""
        if str(self.route.method) not in (method, "ANY"):
            return None
        params: dict[str, str] = {}
        for index, (kind, name) in enumerate(self.segments):
            if kind == "greedy":  # {name+}: the rest of the path, at least one segment
                rest = "/".join(parts[index:])
                return {**params, name: rest} if rest else None
            part = parts[index] if index < len(parts) else None
            if part is None or (kind == "literal" and part != name) or not part:
                return None  # a {param} is one non-empty segment; a literal must be equal
            if kind == "param":
                params[name] = part
        return params if len(parts) == len(self.segments) else None


@attrs.frozen
class RouteMatch:
    function: Function
    route_key: str
    authorized: bool
    path_parameters: dict[str, str]


def select_route(
    routes: Sequence[CompiledRoute], default: Function | None, method: str, path: str
) -> RouteMatch | None:
    """The most specific route for `method path`, else the `$default` route, else None."""
    parts = path.split("/")[1:]
    best: tuple[tuple[int, ...], CompiledRoute, dict[str, str]] | None = None
    for compiled in routes:
        params = compiled.match(method, parts)
        if params is not None and (best is None or compiled.specificity < best[0]):
            best = (compiled.specificity, compiled, params)
    if best is not None:
        _, compiled, params = best
        route = compiled.route
        return RouteMatch(compiled.function, route.key, route.authorized, params)
    if default is not None:
        # API Gateway's $default route carries the authorizer too (see infra/).
        return RouteMatch(default, DEFAULT_ROUTE_KEY, True, {})
    return None


def decode_path(raw_path: bytes) -> str:
    """The path as HTTP APIs hand it to routing and to the Lambda (`rawPath`).

    Live captures (hotsock/voker, vokerhttp/testdata/ingress-paths.json, July 2026) show that an
    HTTP API percent-decodes the path twice and cuts it at a decoded `?`: `/a%20b` becomes
    `/a b`, `/a%2Fb` becomes `/a/b` (two segments), `/a%252Fb` becomes `/a/b`, `/a%3Fb` becomes
    `/a`, and `/a%25zz` (not decodable twice) is rejected with 400. ValueError if it does not
    decode.
    """
    text = raw_path.decode("utf-8")
    for _ in range(2):
        if _BAD_ESCAPE.search(text):
            raise ValueError("invalid percent-escape in path")
        text = unquote_to_bytes(text).decode("utf-8")
    return text.partition("?")[0] or "/"


# --- claims and events --------------------------------------------------------------------


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


def _decode_header(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


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
    match: RouteMatch,
    body: bytes,
    *,
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
        "routeKey": match.route_key,
        "stage": STAGE,
        "time": request_time(epoch_ms),
        "timeEpoch": epoch_ms,
    }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route_key,
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
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    event["isBase64Encoded"] = encoded
    return event


# --- responses ----------------------------------------------------------------------------


class BadLambdaResponse(Exception):
    """The function's result is not something API Gateway can turn into HTTP."""


@attrs.frozen
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    note: str = ""  # why the gateway refused, for the log line only


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


# --- throttling and CORS ------------------------------------------------------------------


@attrs.define
class TokenBucket:
    """API Gateway's throttle: `rate` tokens a second, at most `burst` in the bucket."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _tokens: float = attrs.field(init=False)
    _updated: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("throttle rate must be > 0 and burst >= 1")
        self._tokens = float(self.burst)
        self._updated = self.clock()

    def take(self) -> float:
        """0.0 if a request may pass (a token is taken); else the seconds until one may."""
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


@attrs.frozen
class Cors:
    allow_origins: tuple[str, ...]

    @property
    def enabled(self) -> bool:
        return bool(self.allow_origins)

    def allow_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for `origin`, or None if not allowed."""
        if origin is None or not self.enabled:
            return None
        if origin in self.allow_origins:
            return origin
        return "*" if "*" in self.allow_origins else None

    def headers(self, origin: str | None, *, preflight: bool) -> list[tuple[str, str]]:
        allowed = self.allow_origin(origin)
        if allowed is None:
            return []
        headers = [("access-control-allow-origin", allowed), ("vary", "Origin")]
        if preflight:
            headers += [
                ("access-control-allow-methods", ",".join(CORS_ALLOW_METHODS)),
                ("access-control-allow-headers", ",".join(CORS_ALLOW_HEADERS)),
                ("access-control-max-age", str(CORS_MAX_AGE_S)),
            ]
        headers.append(("access-control-expose-headers", ",".join(CORS_EXPOSE_HEADERS)))
        return headers


# --- the app ------------------------------------------------------------------------------


@attrs.define
class Gateway:
    """The ASGI app `build_app` returns; all state lives on the instance."""

    routes: tuple[CompiledRoute, ...]
    default: Function | None
    config: StackConfig
    issuer: DevIssuer
    invoke: Invoke
    bucket: TokenBucket
    cors: Cors
    max_payload_bytes: int
    concurrency: int = 1
    domain_name: str = DOMAIN_NAME
    # Per event loop (TestClient may run a loop per request), per function.
    _limiters: dict[tuple[int, str], anyio.CapacityLimiter] = attrs.field(factory=dict, init=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:  # websockets: API Gateway HTTP APIs do not do them
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = new_request_id()
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        client = scope.get("client") or ("127.0.0.1", 0)
        server = scope.get("server") or ("127.0.0.1", 80)
        request = IncomingRequest(
            method=scope["method"].upper(),
            raw_path=raw_path,
            path="",
            query_string=scope.get("query_string", b"").decode("utf-8", "replace"),
            headers=tuple(
                (k.decode("latin-1").lower(), _decode_header(v)) for k, v in scope["headers"]
            ),
            source_ip=str(client[0]),
            server_port=int(server[1] or 80),
            scheme=scope.get("scheme", "http"),
        )
        try:
            response = await self._respond(request, receive, request_id)
        except Exception:
            logger.exception("gateway error for %s %s", request.method, raw_path.decode("latin-1"))
            response = gateway_error(500, "Internal Server Error")
        origin = request.header("origin")
        preflight = self._is_preflight(request) and response.status == 204
        # API Gateway sets the framing headers itself, and ignores the integration's own CORS
        # headers when the API has a CORS configuration.
        headers = [
            (k, v)
            for k, v in response.headers
            if k not in HOP_BY_HOP
            and k != "content-length"
            and not (self.cors.enabled and k.startswith("access-control-"))
        ]
        headers += self.cors.headers(origin, preflight=preflight)
        headers.append(("apigw-requestid", request_id))
        headers.append(("content-length", str(len(response.body))))
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode("latin-1"), v.encode("utf-8")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "%s %s %d %.1fms%s",
            request.method,
            raw_path.decode("latin-1"),
            response.status,
            elapsed_ms,
            f" ({response.note})" if response.note else "",
        )

    def _is_preflight(self, request: IncomingRequest) -> bool:
        return (
            self.cors.enabled
            and request.method == "OPTIONS"
            and request.header("origin") is not None
            and request.header("access-control-request-method") is not None
        )

    def _before_routing(self, request: IncomingRequest) -> HttpResponse | None:
        """The issuer's documents, throttling and CORS preflight: answered without a route."""
        raw_path = request.raw_path.decode("latin-1")
        if request.method in ("GET", "HEAD") and raw_path in (
            self.issuer.jwks_path,
            self._discovery_path,
        ):
            return self._issuer_document(raw_path)
        wait = self.bucket.take()
        if wait > 0:
            retry_after = str(max(1, math.ceil(wait)))
            return gateway_error(429, "Too Many Requests", ("retry-after", retry_after))
        if self._is_preflight(request):
            return HttpResponse(204)
        return None

    async def _respond(
        self, request: IncomingRequest, receive: Receive, request_id: str
    ) -> HttpResponse:
        early = self._before_routing(request)
        if early is not None:
            return early
        try:
            path = decode_path(request.raw_path)
        except ValueError:
            return gateway_error(400, "Bad Request")
        request = attrs.evolve(request, path=path)

        body = await _read_body(receive, request, self.max_payload_bytes)
        if body is None:
            return gateway_error(413, "Request Entity Too Large")

        match = select_route(self.routes, self.default, request.method, path)
        if match is None:
            return gateway_error(404, "Not Found")

        claims: dict[str, Any] | None = None
        if match.authorized:
            try:
                claims = self.issuer.verify(_bearer_token(request.header("authorization")))
            except Unauthorized as denied:
                refused = gateway_error(401, "Unauthorized", _challenge(denied.reason))
                return attrs.evolve(refused, note=denied.reason)

        now_ms = int(time.time() * 1000)
        event = build_event(
            request,
            match,
            body,
            claims=claims,
            request_id=request_id,
            epoch_ms=now_ms,
            domain_name=self.domain_name,
        )
        return await self._invoke(match.function, event, now_ms)

    async def _invoke(self, function: Function, event: dict[str, Any], now_ms: int) -> HttpResponse:
        context = lambda_context(function, self.config.region, now_ms)
        timeout = min(float(function.timeout_s), INTEGRATION_TIMEOUT_S)
        if getattr(self.invoke, "enforces_timeout", False):
            # The runtime enforces the function's timeout (from the end of a cold start's
            # init, as Lambda does); API Gateway's own limit is the integration timeout.
            timeout = INTEGRATION_TIMEOUT_S
        async with self._limiter(function):  # one invocation at a time, as in one sandbox
            try:
                with anyio.move_on_after(timeout) as scope:
                    result = await anyio.to_thread.run_sync(
                        self.invoke, function, event, context, abandon_on_cancel=True
                    )
            except SandboxTimeout:
                return gateway_error(500, "Internal Server Error")  # the sandbox logged it
            except Exception:
                # What the Lambda runtime logs for an unhandled error; API Gateway sees a
                # failed invocation and answers 500.
                logger.exception("%s: unhandled error in the function", function.name)
                return gateway_error(500, "Internal Server Error")
        if scope.cancelled_caught:
            if function.timeout_s > INTEGRATION_TIMEOUT_S:
                logger.error("%s: integration timed out after %.0f s", function.name, timeout)
                return gateway_error(503, "Service Unavailable")
            logger.error("%s: Task timed out after %d seconds", function.name, function.timeout_s)
            return gateway_error(500, "Internal Server Error")
        try:
            return map_result(result)
        except BadLambdaResponse as error:
            logger.error("%s: malformed Lambda proxy response: %s", function.name, error)
            return gateway_error(500, "Internal Server Error")

    def _limiter(self, function: Function) -> anyio.CapacityLimiter:
        key = (id(asyncio.get_running_loop()), function.name)
        if key not in self._limiters:
            self._limiters[key] = anyio.CapacityLimiter(self.concurrency)
        return self._limiters[key]

    @property
    def _discovery_path(self) -> str:
        return self.issuer.jwks_path.replace("jwks.json", "openid-configuration")

    def _issuer_document(self, path: str) -> HttpResponse:
        if path == self.issuer.jwks_path:
            document: dict[str, Any] = self.issuer.jwks
        else:
            document = {
                "issuer": self.issuer.issuer,
                "jwks_uri": self.issuer.issuer.rstrip("/") + "/.well-known/jwks.json",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        body = json.dumps(document).encode()
        return HttpResponse(200, (("content-type", "application/json"),), body)


def _bearer_token(authorization: str | None) -> str:
    """The token from the identity source: bare, or prefixed with `Bearer ` (AWS takes both)."""
    if authorization is None or not authorization.strip():
        raise Unauthorized("no token in the Authorization header")
    value = authorization.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value


def _challenge(reason: str) -> tuple[str, str]:
    if reason.startswith("no token"):
        return ("www-authenticate", "Bearer")
    escaped = reason.replace('"', "'")
    return (
        "www-authenticate",
        f'Bearer scope="" error="invalid_token" error_description="{escaped}"',
    )


async def _read_body(receive: Receive, request: IncomingRequest, limit: int) -> bytes | None:
    """The request body, or None if it is over `limit` bytes (read no further then)."""
    declared = request.header("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def build_app(
    functions: Sequence[Function],
    config: StackConfig,
    issuer: DevIssuer,
    invoke: Invoke = invoke_handler,
    *,
    rate: float | None = None,
    burst: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    concurrency: int = 1,
    domain_name: str = DOMAIN_NAME,
) -> Gateway:
    """The gateway for `functions` (the manifest's), configured by the stack's `config`.

    `rate`/`burst` override the stage's throttling (requests a second, bucket size: load
    tests); `clock` is the bucket's monotonic clock (tests); `max_payload_bytes` API Gateway's 10 MB
    quota (tests); `concurrency` how many invocations of one function may run at once (1,
    like one Lambda sandbox: handler module state is never shared by two requests at once).
    """
    compiled = tuple(CompiledRoute.compile(route, f) for f in functions for route in f.routes)
    default = next((f for f in functions if f.routes), None)
    return Gateway(
        routes=compiled,
        default=default,
        config=config,
        issuer=issuer,
        invoke=invoke,
        bucket=TokenBucket(
            rate=float(rate if rate is not None else config.throttle_rate_limit),
            burst=burst if burst is not None else config.throttle_burst_limit,
            clock=clock,
        ),
        cors=Cors(tuple(config.cors_allow_origins)),
        max_payload_bytes=max_payload_bytes,
        concurrency=concurrency,
        domain_name=domain_name,
    )
