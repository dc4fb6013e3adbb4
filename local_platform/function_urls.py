"""The functions' Function URLs, each on its own loopback port, as Lambda serves them: no
routing, no throttling, no authorizer (auth type NONE: the function verifies the bearer token
itself), the stack's CORS, and a request id.

- **Buffered** (`BufferedUrl`, the API's backup URL): each request becomes a Function URL
  event (payload 2.0 with `routeKey` `$default`, `accountId` `anonymous`, no authorizer;
  `function_url_event`) for the function's sandboxes, and the result is mapped to HTTP as
  for the HTTP API (Function URLs read the same response format). A function that fails, times
  out or returns what cannot be mapped is a 502 here: AWS does not document the exact error
  response a Function URL sends, so the local platform does not imitate one.
- **Streamed through the Lambda Web Adapter** (`AdapterUrl`, the download): the function's
  own startup script runs, as on AWS, on a private loopback port (`WebFunction`); each
  request is forwarded to it with the request-context header the adapter adds, and the answer
  is relayed chunk by chunk as it arrives. A client that goes away closes the connection to
  the function too, which is how the function learns it (`handlers.download`).

Not imitated: the 6 MB request limit of a buffered invocation and the response size limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs
import httpx
from starlette.types import Receive, Scope, Send

from local_platform.children import die_with_parent
from local_platform.gateway.payload import HOP_BY_HOP, IncomingRequest, build_event
from local_platform.gateway.responses import BadLambdaResponse, HttpResponse, map_result
from local_platform.gateway.stage import Cors
from local_platform.lambda_runtime import Invoke, lambda_context
from local_platform.sandboxes import SandboxError
from stack.config import StackConfig
from stack.manifest import Function

logger = logging.getLogger("local_platform.urls")

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


def url_id(function: Function) -> str:
    """A stand-in for the 32-character id Lambda gives a function URL."""
    return f"local{function.name.replace('-', '')}".ljust(32, "0")[:32]


def domain_name(function: Function, region: str = REGION) -> str:
    return f"{url_id(function)}.lambda-url.{region}.on.aws"


def function_url_event(
    request: IncomingRequest,
    body: bytes,
    *,
    function: Function,
    request_id: str,
    epoch_ms: int,
    region: str = REGION,
) -> dict[str, Any]:
    """The event Lambda sends a function for a request to its Function URL (auth type NONE):
    payload 2.0 with `$default` as route key and stage, the URL's id as API id, `anonymous` as
    account, and no authorizer."""
    event = build_event(
        request,
        body,
        route_key="$default",
        path_parameters={},
        claims=None,
        request_id=request_id,
        epoch_ms=epoch_ms,
        domain_name=domain_name(function, region),
    )
    event["requestContext"] |= {"accountId": "anonymous", "apiId": url_id(function)}
    return event


def new_request_id() -> str:
    """Shaped like Lambda's: a UUID."""
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _incoming(scope: Scope) -> IncomingRequest:
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    client = scope.get("client") or ("127.0.0.1", 0)
    server = scope.get("server") or ("127.0.0.1", 80)
    return IncomingRequest(
        method=scope["method"].upper(),
        raw_path=raw_path,
        path=scope["path"],
        query_string=scope.get("query_string", b"").decode("utf-8", "replace"),
        headers=tuple(
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
        ),
        source_ip=str(client[0]),
        server_port=int(server[1] or 80),
        scheme=scope.get("scheme", "http"),
    )


def _is_preflight(cors: Cors, request: IncomingRequest) -> bool:
    return (
        cors.enabled
        and request.method == "OPTIONS"
        and request.header("origin") is not None
        and request.header("access-control-request-method") is not None
    )


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(
    send: Send,
    response: HttpResponse,
    cors: Cors,
    origin: str | None,
    request_id: str,
    *,
    preflight: bool = False,
) -> None:
    headers = [
        (k, v)
        for k, v in response.headers
        if k not in HOP_BY_HOP and k != "content-length" and not k.startswith("access-control-")
    ]
    headers += cors.headers(origin, preflight=preflight)
    headers += [("x-amzn-requestid", request_id), ("content-length", str(len(response.body)))]
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(k.encode("latin-1"), v.encode("utf-8")) for k, v in headers],
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def _log(function: Function, request: IncomingRequest, status: int, started: float) -> None:
    logger.info(
        "%s %s %d %.0f ms  [%s URL]",
        request.method,
        request.raw_path.decode("latin-1"),
        status,
        (time.perf_counter() - started) * 1000,
        function.name,
    )


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


@attrs.define
class BufferedUrl:
    """A buffered Function URL: each request is one invocation of `function`'s handler."""

    function: Function
    invoke: Invoke
    cors: Cors
    region: str = REGION
    concurrency: int = 1
    _limiters: dict[int, anyio.CapacityLimiter] = attrs.field(factory=dict, init=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started, request_id = time.perf_counter(), new_request_id()
        request = _incoming(scope)
        preflight = _is_preflight(self.cors, request)
        if preflight:
            response = HttpResponse(204)
        else:
            body = await _read_body(receive)
            now_ms = int(time.time() * 1000)
            event = function_url_event(
                request,
                body,
                function=self.function,
                request_id=request_id,
                epoch_ms=now_ms,
                region=self.region,
            )
            response = await self._invoke(event, now_ms)
        origin = request.header("origin")
        await _respond(send, response, self.cors, origin, request_id, preflight=preflight)
        _log(self.function, request, response.status, started)

    async def _invoke(self, event: dict[str, Any], now_ms: int) -> HttpResponse:
        context = lambda_context(self.function, self.region, now_ms)
        loop = id(asyncio.get_running_loop())
        limiter = self._limiters.setdefault(loop, anyio.CapacityLimiter(self.concurrency))
        failed = HttpResponse(
            502, (("content-type", "text/plain; charset=utf-8"),), b"Internal Server Error"
        )
        async with limiter:
            try:
                with anyio.move_on_after(float(self.function.timeout_s) + 5) as scope:
                    result = await anyio.to_thread.run_sync(
                        self.invoke, self.function, event, context, abandon_on_cancel=True
                    )
            except SandboxError as error:
                logger.error(
                    "%s: unhandled error in the function: %s", self.function.name, error.brief
                )
                return failed
            except Exception:
                logger.exception("%s: unhandled error in the function", self.function.name)
                return failed
        if scope.cancelled_caught:
            logger.error("%s: timed out", self.function.name)
            return failed
        try:
            return map_result(result)
        except BadLambdaResponse as error:
            logger.error("%s: a response the URL cannot map: %s", self.function.name, error)
            return failed


@attrs.define
class AdapterUrl:
    """A Function URL in front of a web function (the Lambda Web Adapter's side): requests are
    forwarded to `upstream`, answers relayed as they come."""

    function: Function
    upstream: str
    cors: Cors
    region: str = REGION

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started, request_id = time.perf_counter(), new_request_id()
        request = _incoming(scope)
        origin = request.header("origin")
        if _is_preflight(self.cors, request):
            await _respond(send, HttpResponse(204), self.cors, origin, request_id, preflight=True)
            _log(self.function, request, 204, started)
            return
        body = await _read_body(receive)
        headers = [(k, v) for k, v in request.headers if k not in HOP_BY_HOP and k != "host"]
        headers.append(("x-amzn-request-context", json.dumps(self._context(request, request_id))))
        target = self.upstream + request.raw_path.decode("latin-1")
        if request.query_string:
            target += "?" + request.query_string
        status = 502
        left = asyncio.Event()
        try:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=None), trust_env=False) as client,
                client.stream(request.method, target, headers=headers, content=body) as upstream,
            ):
                status = upstream.status_code
                relayed = [
                    (k.lower(), v)
                    for k, v in upstream.headers.multi_items()
                    if k.lower() not in HOP_BY_HOP
                    and k.lower() not in ("content-length", "server", "date")
                ]
                relayed += self.cors.headers(origin, preflight=False)
                relayed.append(("x-amzn-requestid", request_id))
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [(k.encode("latin-1"), v.encode("utf-8")) for k, v in relayed],
                    }
                )
                watcher = asyncio.create_task(_watch(receive, left))
                try:
                    async for chunk in upstream.aiter_raw():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                        if left.is_set():
                            return  # closing `upstream` tells the function the client left
                finally:
                    watcher.cancel()
                await send({"type": "http.response.body", "body": b""})
        except httpx.TransportError as error:
            if status == 502:  # nothing sent yet: the function did not answer
                logger.error("%s: no answer from the function: %s", self.function.name, error)
                failed = HttpResponse(
                    502, (("content-type", "text/plain; charset=utf-8"),), b"Internal Server Error"
                )
                await _respond(send, failed, self.cors, origin, request_id)
            else:  # mid-stream: end this response incomplete too
                logger.error("%s: the stream broke off: %s", self.function.name, error)
                raise
        finally:
            _log(self.function, request, status, started)

    def _context(self, request: IncomingRequest, request_id: str) -> dict[str, Any]:
        now_ms = int(time.time() * 1000)
        return {
            "accountId": "anonymous",
            "apiId": url_id(self.function),
            "domainName": domain_name(self.function, self.region),
            "domainPrefix": url_id(self.function),
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": request.header("user-agent") or "",
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": now_ms,
        }


async def _watch(receive: Receive, left: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            left.set()
            return


@attrs.define
class WebFunction:
    """A web function's server, started from its own startup script (the Lambda handler the
    adapter runs on AWS) on `port`, with the function's environment; its output goes to `log`
    line by line. Ends with the platform (`die_with_parent`)."""

    function: Function
    environment: dict[str, str]
    port: int
    log: Callable[[str, str, str], None] | None = None
    _process: subprocess.Popen[str] | None = attrs.field(default=None, init=False)
    _reader: threading.Thread | None = attrs.field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> WebFunction:
        assert self.function.web is not None, f"{self.function.name} is not a web function"
        bin_dir = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            **self.environment,
            "AWS_LWA_PORT": str(self.port),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "LAMBDA_TASK_ROOT": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }
        self._process = subprocess.Popen(  # noqa: S603 - the manifest's own startup script
            [str(ROOT / self.function.web.script)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - one prctl call
        )
        self._reader = threading.Thread(
            target=self._read, name=f"{self.function.name}-output", daemon=True
        )
        self._reader.start()
        self._wait_ready(timeout_s)
        return self

    def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if self.log is not None:
                self.log(self.function.name, "", line.rstrip("\n"))

    def _wait_ready(self, timeout_s: float) -> None:
        """Poll the readiness path, as the adapter does before the first invocation."""
        assert self._process is not None
        assert self.function.web is not None
        deadline = time.monotonic() + timeout_s
        readiness = self.url + self.function.web.readiness_path
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"{self.function.name}: its startup script exited ({self._process.returncode})"
                )
            try:
                if httpx.get(readiness, timeout=1, trust_env=False).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.function.name}: not ready within {timeout_s:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)


def url_functions(functions: Iterable[Function], config: StackConfig) -> list[Function]:
    """The functions whose Function URL the stack creates (`tasks:functionUrls`), in manifest
    order."""
    return [f for f in functions if f.url is not None and f.name in config.function_urls]
