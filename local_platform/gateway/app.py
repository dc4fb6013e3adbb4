"""The gateway itself: the ASGI app `build_app` returns, which does, in this order, what the
`$default` stage of the real HTTP API does for a request, so the Lambda handler that runs on
AWS runs here unchanged:

1. `GET <issuer path>/.well-known/jwks.json` (and `openid-configuration`) serve the dev
   issuer's public keys; not an API Gateway feature, but it lets curl demos verify tokens.
   Likewise `GET /docs` (when given `docs`): the API reference, Swagger UI (`docs.py`).
2. Throttling: one token bucket for the stage (rate `throttle_rate_limit` per second, bucket
   size `throttle_burst_limit`); over it, 429 `{"message":"Too Many Requests"}`.
3. CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here
   with 204; no authorizer, no Lambda.
4. The request path is percent-decoded as HTTP APIs do (see `routes.decode_path`); a path that
   does not decode is 400 `{"message":"Bad Request"}`.
5. Bodies over API Gateway's own 10 MB quota are 413 `{"message":"Request Entity Too
   Large"}`; smaller limits (`max_body_bytes`) are the handler's business, not the gateway's.
6. Route selection from the manifest (most specific route wins); no match goes to `$default`,
   the first function with routes, which answers 404/405 itself.
7. The JWT authorizer (`DevIssuer.verify`). Failures are 401 with the exact body API Gateway
   sends, `{"message":"Unauthorized"}` (plain JSON, *not* problem+json: it is the gateway,
   not our handler, answering) and a `www-authenticate` header in AWS's format.
8. The Lambda is invoked (`Gateway._invoke`) with a payload 2.0 event and a Lambda-like
   context; its result is mapped to HTTP as API Gateway maps it. A handler that raises, times
   out or returns what API Gateway cannot read is 500 `{"message":"Internal Server Error"}`.

CORS headers (for an allowed Origin) and `apigw-requestid` are added to every response,
including the gateway's own errors. Each request is logged as one line (on the
`local_platform.gateway` logger): method, path, status, milliseconds, request id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import anyio.to_thread
import attrs
from starlette.types import Receive, Scope, Send

from local_platform.auth import DevIssuer, Unauthorized
from local_platform.gateway.docs import ApiDocs
from local_platform.gateway.payload import (
    DOMAIN_NAME,
    HOP_BY_HOP,
    IncomingRequest,
    build_event,
    new_request_id,
)
from local_platform.gateway.responses import (
    BadLambdaResponse,
    HttpResponse,
    gateway_error,
    map_result,
)
from local_platform.gateway.routes import CompiledRoute, decode_path, select_route
from local_platform.gateway.stage import Cors, TokenBucket
from local_platform.lambda_runtime import Invoke, invoke_handler, lambda_context
from local_platform.meter import Meter
from local_platform.sandboxes import SandboxError, SandboxTimeout
from stack import access_log
from stack.config import StackConfig
from stack.manifest import Function

# The package's name, not this module's: one logger for the gateway, whichever module logs.
logger = logging.getLogger("local_platform.gateway")

# API Gateway's payload quota ("10 MB"; read as MiB here).
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# API Gateway's own integration timeout (HTTP APIs: at most 30 s).
INTEGRATION_TIMEOUT_S = 30.0


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
    docs: ApiDocs | None = None
    meter: Meter | None = None
    """When metering (`local_platform.meter`): one record per request API Gateway would bill."""
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
        if self.meter is not None:
            self._record(request, request_id, response, elapsed_ms)
        note = response.note or _problem_detail(response)
        logger.info(
            "%s %s %d %.0f ms  [%s]%s",
            request.method,
            raw_path.decode("latin-1"),
            response.status,
            elapsed_ms,
            request_id,
            f"  ({note})" if note else "",
        )

    def _record(
        self,
        request: IncomingRequest,
        request_id: str,
        response: HttpResponse,
        elapsed_ms: float,
    ) -> None:
        """What API Gateway bills for the request (one request per 512 KB of it, as received
        and sent) and the access-log line the stage writes for it."""
        assert self.meter is not None
        line = access_log.render(
            {
                "requestId": request_id,
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
                "identity.sourceIp": request.source_ip,
                "identity.userAgent": request.header("user-agent"),
                "httpMethod": request.method,
                "path": request.raw_path.decode("latin-1"),
                "routeKey": response.route_key,
                "status": response.status,
                "protocol": "HTTP/1.1",
                "responseLength": len(response.body),
                "responseLatency": round(elapsed_ms),
                "integrationLatency": round(elapsed_ms) if response.route_key else None,
            }
        )
        self.meter.record(
            "api",
            request_id=request_id,
            method=request.method,
            path=request.raw_path.decode("latin-1"),
            route=response.route_key,
            status=response.status,
            request_bytes=int(request.header("content-length") or 0),
            response_bytes=len(response.body),
            access_log_bytes=len(line.encode()),
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
        if self.docs is not None:
            page = self.docs.respond(
                request.method, raw_path, request.scheme, request.header("host")
            )
            if page is not None:
                return page
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
            body,
            route_key=match.route_key,
            path_parameters=match.path_parameters,
            claims=claims,
            request_id=request_id,
            epoch_ms=now_ms,
            domain_name=self.domain_name,
        )
        response = await self._invoke(match.function, event, now_ms)
        return attrs.evolve(response, route_key=match.route_key)

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
            except SandboxError as error:  # the function's own log has the traceback
                if not isinstance(error, SandboxTimeout):  # (a timeout: the sandbox said so)
                    logger.error(
                        "%s: unhandled error in the function: %s", function.name, error.brief
                    )
                return gateway_error(500, "Internal Server Error")
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


def _problem_detail(response: HttpResponse) -> str:
    """The `detail` of a problem+json error, for the request's log line (a developer sees why
    without reading the body)."""
    if response.status < 400 or not any(
        k == "content-type" and v.startswith("application/problem+json")
        for k, v in response.headers
    ):
        return ""
    try:
        detail = json.loads(response.body).get("detail", "")
    except (ValueError, AttributeError):
        return ""
    text = str(detail)
    return text if len(text) <= 120 else text[:119] + "…"


def _decode_header(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


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
    docs: ApiDocs | None = None,
    meter: Meter | None = None,
) -> Gateway:
    """The gateway for `functions` (the manifest's), configured by the stack's `config`.

    `rate`/`burst` override the stage's throttling (requests a second, bucket size: load
    tests); `clock` is the bucket's monotonic clock (tests); `max_payload_bytes` API Gateway's 10 MB
    quota (tests); `concurrency` how many invocations of one function may run at once (1,
    like one Lambda sandbox: handler module state is never shared by two requests at once);
    `docs` the API reference served at `/docs` (`make dev` serves it; API Gateway does not);
    `meter` where to record each request when metering (`local_platform.meter`).
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
        docs=docs,
        meter=meter,
    )
